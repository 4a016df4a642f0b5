"""The local service behind `sendguard demo` and `sendguard serve`: an embedded moto server, a
fault-injecting HTTP proxy, a stand-in API Gateway, the load and the verdict. Needs the `local` extra."""
