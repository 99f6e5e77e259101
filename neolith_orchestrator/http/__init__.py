"""The HTTP API (Starlette): one module of routes per area, JSON errors (`errors`),
request parsing (`inputs`) and request dependencies (`deps`)."""
