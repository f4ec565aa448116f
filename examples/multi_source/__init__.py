"""Two databases (one per bounded context), one dispatcher, one unit-of-work factory per source."""
