"""One router per resource; each route is a thin adapter over functions in smartbins/ or
backend/ that tests can call directly."""
