"""market stage of rulebook."""
