"""OSS emulator: durable storage (storage), XML API (api, listing, cors), V1/V4 verification (auth),
OSS-trigger events (events) and the HTTP transport (server)."""
