"""AWS Signature Version 4 for `auth: {type: aws_sigv4}` steps, by botocore's signer (the `aws` extra).

Signing is crypto over the exact request bytes, so it is delegated to AWS's own maintained implementation
rather than written here.
"""
from __future__ import annotations

from datetime import datetime, timezone

import httpx

from ..errors import EngineError


def sign(request: httpx.Request, *, now: datetime, service: str, region: str, access_key: str, secret_key: str,
         session_token: str = "") -> None:
    """Add `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token`) to `request`, signed for `service`/`region`
    at the run's clock `now` (so replays sign deterministically)."""
    try:
        from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:
        raise EngineError("unsupported", "AWS signing needs botocore: pip install 'engine[aws]'") from None

    class _AtClock(SigV4Auth):  # type: ignore[misc]
        """botocore's SigV4 with the timestamp taken from the run's clock instead of the wall clock."""

        def add_auth(self, aws_request: AWSRequest) -> None:
            aws_request.context["timestamp"] = now.astimezone(timezone.utc).strftime(SIGV4_TIMESTAMP)
            self._modify_request_before_signing(aws_request)
            canonical = self.canonical_request(aws_request)
            signature = self.signature(self.string_to_sign(aws_request, canonical), aws_request)
            self._inject_signature_to_request(aws_request, signature)

    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "content-length")}
    aws = AWSRequest(method=request.method, url=str(request.url), data=request.content, headers=headers)
    _AtClock(Credentials(access_key, secret_key, session_token or None), service, region).add_auth(aws)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"):
        if name in aws.headers:
            request.headers[name] = aws.headers[name]
