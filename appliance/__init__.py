"""YakYak: a phone system in a box (SIP PBX appliance)."""

__version__ = "0.1.0"
