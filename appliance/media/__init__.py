"""Media edge: RTP port allocation and the asyncio RTP/RTCP relay that anchors calls."""
