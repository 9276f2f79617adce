"""trading stage of rulebook."""
