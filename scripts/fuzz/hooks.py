"""schemathesis hooks for `scripts/api-fuzz`: rule uploads are `application/wasm`."""

import schemathesis


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    """Send generated values as raw bytes (the server must refuse what is not a component)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()
