"""``synthdspy generate --engine ray``: generation units on a Ray cluster (Ray Data actor pool),
one rate limiter per endpoint for the whole cluster, records in the driver's store
(:mod:`synthdspy.ray_engine.driver`)."""
