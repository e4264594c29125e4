"""HTTP: the admin, channel and inbox APIs, live streams, pages and static assets."""
