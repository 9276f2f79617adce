"""engine stage of rulebook."""
