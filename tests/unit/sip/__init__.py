"""Unit tests of the SIP core (a package so test modules can share helpers)."""
