"""The HTTP layer: thin Tornado handlers under /infinstor/api/. Domain logic lives elsewhere."""
