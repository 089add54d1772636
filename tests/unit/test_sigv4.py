"""hooks/sigv4.py: botocore's SigV4 signature at the run's clock (AWS's published example values)."""
from __future__ import annotations

from datetime import datetime, timezone

import httpx

from engine.hooks.sigv4 import sign


def test_signature_is_deterministic_at_the_frozen_clock_and_matches_botocore() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
    body = b'{"TimePeriod": {"Start": "2026-06-01", "End": "2026-07-01"}}'
    request = httpx.Request("POST", "https://ce.us-east-1.amazonaws.com/", content=body,
                            headers={"Content-Type": "application/x-amz-json-1.1",
                                     "X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage"})
    sign(request, now=now, service="ce", region="us-east-1", access_key="AKIDEXAMPLE",
         secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    assert request.headers["X-Amz-Date"] == "20260701T120000Z"
    auth = request.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260701/us-east-1/ce/aws4_request")
    # the same request signed by botocore itself (its clock patched to `now`) gives the same signature
    import botocore.auth as botocore_auth

    original = botocore_auth.get_current_datetime
    botocore_auth.get_current_datetime = lambda *a, **k: now.replace(tzinfo=None)
    try:
        aws = AWSRequest(method="POST", url="https://ce.us-east-1.amazonaws.com/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1",
                                  "X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage",
                                  "host": "ce.us-east-1.amazonaws.com"})
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "ce",
                  "us-east-1").add_auth(aws)
    finally:
        botocore_auth.get_current_datetime = original
    assert aws.headers["Authorization"] == auth


def test_session_token_is_sent() -> None:
    request = httpx.Request("GET", "https://monitoring.us-west-2.amazonaws.com/?Action=GetMetricData")
    sign(request, now=datetime(2026, 7, 1, tzinfo=timezone.utc), service="monitoring", region="us-west-2",
         access_key="AKIDEXAMPLE", secret_key="secret", session_token="session-token-example")
    assert request.headers["X-Amz-Security-Token"] == "session-token-example"
