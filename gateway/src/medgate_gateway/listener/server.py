"""C-ECHO and C-STORE service class provider.

One thread per association (pynetdicom), each storing through the shared :class:`Ingestor`.
TCP_NODELAY is set on every accepted socket: without it each DIMSE response waits on the
peer's delayed ACK (about 88 ms per instance on loopback).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from medgate_gateway.db.repository import add_audit
from medgate_gateway.dimse_status import SUCCESS, status_for
from medgate_gateway.ingest.ingestor import Ingestor, Source
from medgate_gateway.ingest.parse import SUPPORTED_TRANSFER_SYNTAXES
from medgate_gateway.listener.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION, file_header
from medgate_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def parse_allow_list(entries: list[str]) -> dict[str, set[str]]:
    """``["CT1", "PACS@10.0.0.5"]`` -> ``{"CT1": set(), "PACS": {"10.0.0.5"}}``; empty set: any host."""
    allowed: dict[str, set[str]] = {}
    for entry in entries:
        ae, _, host = entry.strip().partition("@")
        hosts = allowed.setdefault(ae.strip(), set())
        if host:
            hosts.add(host.strip())
    return allowed


class _ReusePortServer(ThreadedAssociationServer):
    def server_bind(self) -> None:
        assert self.socket is not None  # socketserver creates it before binding
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class DicomListener:
    def __init__(self, ingestor: Ingestor, settings: GatewaySettings, *, reuse_port: bool = False) -> None:
        self.ingestor = ingestor
        self.settings = settings
        self.reuse_port = reuse_port
        self.allowed = parse_allow_list(settings.allowed_aes)
        self._server: Any = None
        self._lock = threading.Lock()
        self.ae = self._build_ae()

    def _build_ae(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION
        ae.maximum_pdu_size = self.settings.max_pdu_bytes
        ae.maximum_associations = self.settings.max_associations
        ae.network_timeout = 60
        ae.dimse_timeout = 60
        syntaxes = list(SUPPORTED_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification, syntaxes)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, syntaxes)
        return ae

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("listener is not running")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Listen in background threads; returns once the socket is bound."""
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_connect),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        address = (self.settings.dicom_host, self.settings.dicom_port)
        if self.reuse_port:
            # several processes accept on one port; the kernel spreads associations over them
            server = self.ae.make_server(address, evt_handlers=handlers, server_class=_ReusePortServer)
            threading.Thread(target=server.serve_forever, name="medgate-dicom-acceptor", daemon=True).start()
            self.ae._servers.append(server)
            self._server = server
        else:
            self._server = self.ae.start_server(address, block=False, evt_handlers=handlers)
        log.info("DICOM listener started", extra={"ae_title": self.settings.ae_title, "port": self.port})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- event handlers: none of them may raise ------------------------------------------

    def _on_connect(self, event: evt.Event) -> None:
        try:
            wrapper = event.assoc.dul.socket
            sock = wrapper.socket if wrapper is not None else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):  # pragma: no cover - socket already gone
            log.debug("could not tune the accepted socket")

    def _on_requested(self, event: evt.Event) -> None:
        """Reject associations from calling AE titles (or hosts) not on the allow-list."""
        if not self.allowed:
            return
        try:
            calling = event.assoc.requestor.primitive.calling_ae_title.strip()  # type: ignore[union-attr]
            host = event.assoc.requestor.address
            hosts = self.allowed.get(calling)
            if hosts is not None and (not hosts or host in hosts):
                return
            log.warning("association rejected: calling AE not allowed", extra={"calling_ae": calling, "client": host})
            self._audit_rejection(calling, host)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent; calling AE title not recognised
            event.assoc.is_rejected = True
            event.assoc.kill()
        except Exception:  # pragma: no cover - never let a handler raise
            log.exception("association check failed; aborting")
            event.assoc.abort()

    def _audit_rejection(self, calling: str, host: str) -> None:
        try:
            with self.ingestor.db.write() as session:
                add_audit(
                    session,
                    actor=f"ae:{calling}",
                    action="dicom.associate",
                    client=host,
                    outcome="rejected",
                    detail={"reason": "calling AE not allowed"},
                )
        except Exception:  # pragma: no cover - auditing must not break rejection
            log.exception("could not audit a rejected association")

    def _on_echo(self, event: evt.Event) -> int:
        return SUCCESS

    def _on_store(self, event: evt.Event) -> int:
        try:
            request = event.request
            calling = event.assoc.requestor.ae_title.strip()
            sop_class, sop_uid = str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID)  # type: ignore[union-attr]
            header = file_header(sop_class, sop_uid, str(event.context.transfer_syntax), calling)
            data = header + request.DataSet.getbuffer()  # type: ignore[union-attr]
            source = Source(
                transport="dimse",
                actor=f"ae:{calling}",
                role="modality",
                client=event.assoc.requestor.address,
                calling_ae=calling,
            )
            self.ingestor.ingest(data, source, expect=(sop_class, sop_uid))
            return SUCCESS
        except Exception as exc:
            status = status_for(exc)
            if status == 0x0110:
                log.exception("C-STORE failed unexpectedly")
            else:
                log.warning("C-STORE refused: %s", exc, extra={"status": f"0x{status:04X}"})
            return status
