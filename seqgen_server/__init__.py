"""seqgen-server: the allocator daemon that owns numbers and their durable state."""
