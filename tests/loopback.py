"""The egress rules of tests whose HTTP servers listen on the loopback interface: everything
else stays refused, as without A2N_EGRESS_ALLOW."""

from __future__ import annotations

from application.egress import Egress
from domain.egress import EgressPolicy

LOOPBACK_ALLOWED = EgressPolicy.parse("127.0.0.0/8,::1")
LOOPBACK_EGRESS = Egress(LOOPBACK_ALLOWED)
