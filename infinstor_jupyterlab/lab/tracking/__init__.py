"""The tracking service this Jupyter server talks to: an embedded local one or a remote one."""

from .base import TrackingBackend, TrackingStatus
from .embedded import EmbeddedTrackingServer
from .remote import RemoteTrackingServer

__all__ = ["EmbeddedTrackingServer", "RemoteTrackingServer", "TrackingBackend", "TrackingStatus"]
