"""The privacy portal: server-rendered pages for members and for team owners and admins (P5)."""
