"""A production-shaped ALB, built with plain boto3 calls: HTTP redirects to HTTPS, the HTTPS listener answers
unknown hosts with a fixed 404 and forwards the app's host name by a rule, with a certificate for that name
(issued by the sandbox CA and imported into ACM, as a user imports theirs). ecs-ship must name the rule's
URL, smoke-check it with certificate verification on, and the user's redirect must reach the new version."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import requests

from tests.conftest import App
from tests.e2e.conftest import ecs_ship, spec_for
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port


def https_behind_rules(sandbox: Sandbox, w: World, host: str) -> int:
    """Turn the world's ALB into the usual production shape; return the HTTPS listener's port."""
    aws = sandbox.clients()
    assert sandbox.ca is not None
    issued = sandbox.ca.issue([host])
    cert = aws["acm"].import_certificate(
        Certificate=issued.certificate, PrivateKey=issued.private_key, CertificateChain=issued.chain
    )["CertificateArn"]
    elbv2 = aws["elbv2"]
    port = free_port()
    https = elbv2.create_listener(
        LoadBalancerArn=w.load_balancer_arn,
        Protocol="HTTPS",
        Port=port,
        Certificates=[{"CertificateArn": cert}],
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no app"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    elbv2.create_rule(
        ListenerArn=https,
        Priority=10,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": w.target_group_arn, "Weight": 1}]},
            }
        ],
    )
    http = next(
        lst["ListenerArn"]
        for lst in elbv2.describe_listeners(LoadBalancerArn=w.load_balancer_arn)["Listeners"]
        if lst["Port"] == w.listener_port
    )
    elbv2.modify_listener(
        ListenerArn=http,
        DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": str(port), "StatusCode": "HTTP_301"}}
        ],
    )
    return port


def test_https_host_rule_behind_a_redirect(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    host = f"app-{uuid.uuid4().hex[:6]}.example.test"
    port = https_behind_rules(sandbox, w, host)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}, extra="smoke: {contains: hello v2}\n"))
    url = f"https://{host}:{port}"
    ca = {"REQUESTS_CA_BUNDLE": str(sandbox.ca_bundle)}

    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec), env=ca)
    assert plan.code == 0, plan.text
    assert f"service URL: {url}" in plan.text

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env=ca)
    assert run.code == 0, run.text
    assert f"smoke check: GET {url}/ -> 200" in run.text
    assert f"serving at {url}" in run.text

    # A user typing the plain http:// address is redirected to HTTPS and reaches the new version, the
    # certificate verified against the sandbox CA.
    resp = requests.get(f"http://{host}:{w.listener_port}/", verify=str(sandbox.ca_bundle), timeout=10)
    assert [r.status_code for r in resp.history] == [301]
    assert (resp.url, resp.text.strip()) == (f"{url}/", "hello v2")
    # The rule answers to its host only: a request naming the ALB's own DNS name gets the default action.
    fixed = requests.get(f"{url}/", headers={"Host": w.dns_name}, verify=str(sandbox.ca_bundle), timeout=10)
    assert (fixed.status_code, fixed.text) == (404, "no app")

    # Without the CA the smoke check refuses the certificate (verification is never turned off).
    again = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--no-rollback")
    assert again.code == 1, again.text
    assert "the certificate was not accepted" in again.text
