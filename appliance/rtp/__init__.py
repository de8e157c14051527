"""RTP media core, sans-IO: RFC 3550 packets, RTCP and statistics, RFC 4733 events."""
