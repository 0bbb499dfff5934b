"""A production-shaped ALB, built with plain boto3 calls as a user's Terraform builds it: a certificate requested
from ACM for the user's domain and its wildcard (DNS validation), HTTP redirecting to HTTPS, the HTTPS listener
answering unknown hosts with a fixed 404 and forwarding the app's host name by a rule to a Fargate service.
ecs-ship must name the rule's URL, smoke-check it with certificate verification on, and the user's redirect
must reach the new version. A certificate imported from the user's own CA serves beside the requested one,
chosen by SNI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import requests

from tests.conftest import App, HelloImages
from tests.e2e.conftest import ecs_ship, execution_role, network, poll, quick_group, register_revision, spec_for
from tests.sandbox.bootstrap import CONTAINER, CONTAINER_PORT, REGION, World, wait_rollout
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port


@dataclass(frozen=True)
class Site:
    """The world (its ``listener_port`` the plain-HTTP listener that redirects) and its HTTPS side."""

    world: World
    zone: str  # the user's domain: the certificate is for it and *.zone
    host: str  # the app's host name, the one the rule forwards
    https_port: int
    https_listener_arn: str
    certificate_arn: str

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.https_port}"


def https_site(sandbox: Sandbox, image: str) -> Site:
    c = sandbox.clients()
    acm, ecs, elbv2, logs = c["acm"], c["ecs"], c["elbv2"], c["logs"]
    n = "h" + uuid.uuid4().hex[:8]
    zone = f"{n}.example.test"
    host = f"app.{zone}"

    cert = acm.request_certificate(DomainName=zone, SubjectAlternativeNames=[f"*.{zone}"], ValidationMethod="DNS")[
        "CertificateArn"
    ]
    # As Terraform's aws_acm_certificate_validation does: the listener takes the certificate once it is issued.
    poll(
        lambda: acm.describe_certificate(CertificateArn=cert)["Certificate"]["Status"],
        lambda status: status == "ISSUED",
        30,
        f"ACM to issue {cert}",
    )

    vpc, subnets, sg = network(c["ec2"], n, "10.3.0.0/16")
    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]
    role = execution_role(c["iam"], f"{n}-exec")
    log_group = f"/ecs/{n}"
    logs.create_log_group(logGroupName=log_group)
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Type="application")[
        "LoadBalancers"
    ][0]
    tg = quick_group(elbv2, f"{n}-tg", vpc)
    https_port, http_port = free_port(), free_port()
    https = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTPS",
        Port=https_port,
        Certificates=[{"CertificateArn": cert}],
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no app"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    forward_host(elbv2, https, 10, host, tg)
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=http_port,
        DefaultActions=[
            {
                "Type": "redirect",
                "RedirectConfig": {"Protocol": "HTTPS", "Port": str(https_port), "StatusCode": "HTTP_301"},
            }
        ],
    )

    world = World(
        region=REGION,
        cluster=cluster,
        service=f"{n}-svc",
        family=f"{n}-app",
        task_definition_arn="",  # registered below, in the world's family
        target_group_arn=tg,
        load_balancer_arn=lb["LoadBalancerArn"],
        dns_name=lb["DNSName"],
        listener_port=http_port,
        log_group=log_group,
        execution_role_arn=role,
        subnets=subnets,
        security_group=sg,
    )
    world = replace(world, task_definition_arn=register_revision(ecs, world, image))
    ecs.create_service(
        cluster=cluster,
        serviceName=world.service,
        taskDefinition=world.task_definition_arn,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": CONTAINER, "containerPort": CONTAINER_PORT}],
    )
    wait_rollout(sandbox.endpoint, world, timeout=90)
    return Site(world, zone, host, https_port, https, cert)


def forward_host(elbv2: Any, listener: str, priority: int, host: str, target_group: str) -> None:
    """A listener rule sending requests for `host` to `target_group`."""
    elbv2.create_rule(
        ListenerArn=listener,
        Priority=priority,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
        Actions=[
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": target_group, "Weight": 1}]}}
        ],
    )


def test_https_host_rule_behind_a_redirect(sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]) -> None:
    site = https_site(sandbox, hello.get("v1"))
    w = site.world
    # ACM issued what was asked for (the sandbox validates the domain at once; AWS waits for the DNS record).
    described = sandbox.clients()["acm"].describe_certificate(CertificateArn=site.certificate_arn)["Certificate"]
    assert (described["Status"], described["Type"], described["KeyAlgorithm"]) == (
        "ISSUED",
        "AMAZON_ISSUED",
        "RSA_2048",
    )
    assert (described["DomainName"], described["SubjectAlternativeNames"]) == (site.zone, [site.zone, f"*.{site.zone}"])
    assert {o["ValidationStatus"] for o in described["DomainValidationOptions"]} == {"SUCCESS"}

    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}, extra="smoke: {contains: hello v2}\n"))
    ca = {"REQUESTS_CA_BUNDLE": str(sandbox.ca_bundle)}

    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec), env=ca)
    assert plan.code == 0, plan.text
    assert f"service URL: {site.url}" in plan.text

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env=ca)
    assert run.code == 0, run.text
    assert f"smoke check: GET {site.url}/ -> 200" in run.text
    assert f"serving at {site.url}" in run.text

    # A user typing the plain http:// address is redirected to HTTPS and reaches the new version, the
    # wildcard certificate verified against the sandbox CA.
    resp = requests.get(f"http://{site.host}:{w.listener_port}/", verify=str(sandbox.ca_bundle), timeout=10)
    assert [r.status_code for r in resp.history] == [301]
    assert (resp.url, resp.text.strip()) == (f"{site.url}/", "hello v2")
    # The rule answers to its host only: a request naming the ALB's own DNS name gets the default action.
    fixed = requests.get(f"{site.url}/", headers={"Host": w.dns_name}, verify=str(sandbox.ca_bundle), timeout=10)
    assert (fixed.status_code, fixed.text) == (404, "no app")

    # Without the CA the smoke check refuses the certificate (verification is never turned off).
    again = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--no-rollback")
    assert again.code == 1, again.text
    assert "the certificate was not accepted" in again.text


def test_an_imported_certificate_serves_beside_the_requested_one(sandbox: Sandbox, hello: HelloImages) -> None:
    # A second site on the same listener, with a certificate from the user's own CA (here the sandbox's),
    # imported and added to the listener's certificate list: each host gets its own certificate by SNI.
    site = https_site(sandbox, hello.get("v1"))
    c = sandbox.clients()
    assert sandbox.ca is not None
    other = f"shop-{uuid.uuid4().hex[:6]}.example.test"
    issued = sandbox.ca.issue([other])
    imported = c["acm"].import_certificate(
        Certificate=issued.certificate, PrivateKey=issued.private_key, CertificateChain=issued.chain
    )["CertificateArn"]
    described = c["acm"].describe_certificate(CertificateArn=imported)["Certificate"]
    assert (described["Status"], described["Type"]) == ("ISSUED", "IMPORTED")
    c["elbv2"].add_listener_certificates(
        ListenerArn=site.https_listener_arn, Certificates=[{"CertificateArn": imported}]
    )
    forward_host(c["elbv2"], site.https_listener_arn, 20, other, site.world.target_group_arn)

    def get(host: str) -> str:
        try:
            url = f"https://{host}:{site.https_port}/"
            return requests.get(url, verify=str(sandbox.ca_bundle), timeout=5).text.strip()
        except requests.RequestException as exc:  # until the ALB serves the new rule and certificate
            return repr(exc)

    poll(lambda: get(other), lambda body: body == "hello v1", 30, f"https://{other} served with its certificate")
    assert get(site.host) == "hello v1"
