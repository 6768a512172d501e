"""Reports: plots drawn from JSON records (matplotlib, Agg; imported lazily)."""
