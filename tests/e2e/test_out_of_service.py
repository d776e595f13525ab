"""Evidence kept: an instance an Auto Scaling group manages is in Standby and out of its
target group before its interfaces move, its volumes are kept on termination, and where it
served is recorded on it for release. Without this the group terminates the isolated
instance (it fails its health checks) and the volumes go with it."""

import json

from conftest import assert_calls_declared, audit_records, calls_by, finding, interfaces, put, ssh_brute_force
from firebreak_localaws import provision

FLEET = "web-fleet"
PORT = 8080
CLASSIC = "web-classic"


def web_fleet(acct):
    """An Auto Scaling group of one web server in the demo subnet, registered with a
    target group on port 8080 and a Classic Load Balancer; its root volume deleted on
    termination (EC2's default)."""
    ec2, autoscaling, elb = acct.client("ec2"), acct.client("autoscaling"), acct.client("elbv2")
    demo = acct.demo
    ec2.create_launch_template(LaunchTemplateName=FLEET, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro", "SecurityGroupIds": [demo["groups"]["web"]],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}}],
    })
    tg = elb.create_target_group(Name=FLEET, Protocol="HTTP", Port=80, VpcId=demo["vpc"], TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=FLEET, LaunchTemplate={"LaunchTemplateName": FLEET, "Version": "$Latest"},
        MinSize=1, MaxSize=3, DesiredCapacity=1, VPCZoneIdentifier=demo["subnets"][0],
    )
    instance = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[FLEET])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "payments"}, {"Key": "environment", "Value": "production"}])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": PORT}])
    classic = acct.client("elb")
    classic.create_load_balancer(LoadBalancerName=CLASSIC, Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": PORT}], Subnets=[demo["subnets"][0]])
    classic.register_instances_with_load_balancer(LoadBalancerName=CLASSIC, Instances=[{"InstanceId": instance}])
    return instance, tg


def behind_classic(acct, instance):
    lb = acct.client("elb").describe_load_balancers(LoadBalancerNames=[CLASSIC])["LoadBalancerDescriptions"][0]
    return any(i["InstanceId"] == instance for i in lb["Instances"])


def lifecycle(acct, instance):
    return acct.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"][0]["LifecycleState"]


def registered(acct, tg, instance):
    health = acct.client("elbv2").describe_target_health(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": PORT}])
    return [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]] != ["unused"]


def kept_on_termination(acct, instance):
    i = acct.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return {b["DeviceName"]: not b["Ebs"]["DeleteOnTermination"] for b in i["BlockDeviceMappings"]}


def instance_tags(acct, instance):
    i = acct.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in i.get("Tags", [])}


def test_an_auto_scaling_instance_leaves_service_before_its_interfaces_move_and_keeps_its_volumes(account):
    instance, tg = web_fleet(account)
    assert lifecycle(account, instance) == "InService" and registered(account, tg, instance) and behind_classic(account, instance)
    devices = kept_on_termination(account, instance)
    assert "/dev/xvda" in devices and not any(devices.values()), "EC2 deletes these volumes on termination"
    event = ssh_brute_force(account, instance_id=instance)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))

    assert lifecycle(account, instance) == "Standby", "the group no longer health-checks or replaces it"
    assert not registered(account, tg, instance), "no user request reaches it"
    assert not behind_classic(account, instance)
    assert kept_on_termination(account, instance) == {d: True for d in devices}
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, instance).values())) == {(isolation,)}
    # Out of service first: both calls come before the first interface moves.
    calls = [c["operation"] for c in calls_by(account, "isolate-instance")]
    first_move = calls.index("ModifyNetworkInterfaceAttribute")
    assert max(calls.index(c) for c in ("EnterStandby", "DeregisterTargets", "DeregisterInstancesFromLoadBalancer")) < first_move, calls
    # Where it served, for release: recorded with the original groups.
    tags = instance_tags(account, instance)
    assert tags["firebreak:auto-scaling-group"] == FLEET
    assert tags["firebreak:target-groups"] == tg.split(":", 5)[5] + f":{PORT}", tags
    assert tags["firebreak:load-balancers"] == CLASSIC
    assert finding(account, ident)["Workflow"]["Status"] == "RESOLVED"
    isolate = [r for r in audit_records(account, run["executionArn"], at_least=3) if r["record"] == "action" and r["action"] == "isolate-instance"]
    changes = {(c["what"], c["before"], c["after"]) for c in isolate[0]["changes"]}
    assert (f"Auto Scaling group {FLEET}", "InService", "Standby") in changes, changes
    assert ("volume /dev/xvda on termination", "deleted", "kept") in changes, changes
    assert f"out of service first (Auto Scaling group {FLEET}, target group" in isolate[0]["summary"], isolate[0]["summary"]
    # The group keeps its capacity: a replacement serves instead.
    group = account.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[FLEET])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    assert_calls_declared(account)

    # Again: already out of service, nothing more, the record kept.
    put(account, event)
    again = account.wait_for_execution("response", after=1, timeout=120)
    assert again["status"] == "SUCCEEDED"
    calls = [c["operation"] for c in calls_by(account, "isolate-instance")]
    assert calls.count("EnterStandby") == 1 and calls.count("DeregisterTargets") == 1 and calls.count("DeregisterInstancesFromLoadBalancer") == 1, calls
    assert instance_tags(account, instance)["firebreak:target-groups"] == tags["firebreak:target-groups"]


def test_a_dry_run_reads_where_it_serves_and_changes_nothing(account):
    instance, tg = web_fleet(account)
    event = ssh_brute_force(account, instance_id=instance)
    provision.import_finding(account.client, event)
    sfn = account.client("stepfunctions")
    run = sfn.start_execution(
        stateMachineArn=account.deployed["stateMachines"]["response"],
        input=json.dumps({"dryRun": True, "reason": "rehearsal", "event": event, "playbooks": ["ec2-compromise"]}),
    )
    out = account.wait_for_execution("response", timeout=120)
    assert out["executionArn"] == run["executionArn"] and out["status"] == "SUCCEEDED", out
    assert lifecycle(account, instance) == "InService" and registered(account, tg, instance) and behind_classic(account, instance)
    assert not any(kept_on_termination(account, instance).values())
    assert "firebreak:auto-scaling-group" not in instance_tags(account, instance)
    calls = {c["operation"] for c in calls_by(account, "isolate-instance")}
    assert not calls & {"EnterStandby", "DeregisterTargets", "DeregisterInstancesFromLoadBalancer"}, calls
    isolate = [r for r in audit_records(account, run["executionArn"], at_least=2) if r["record"] == "action" and r["action"] == "isolate-instance"]
    assert f"out of service first (Auto Scaling group {FLEET}" in isolate[0]["summary"], isolate[0]["summary"]


def test_two_findings_for_one_fleet_instance_at_once_both_end_resolved(account):
    """Both responses may read it InService; Auto Scaling lets one put it in Standby and
    refuses the other, which must read again and go on, never end NOTIFIED for it."""
    instance, tg = web_fleet(account)
    events = [ssh_brute_force(account, instance_id=instance, finding_id=f"0123456789abcdef0123456789abcd{n:02d}") for n in (1, 2)]
    account.put_events(events)
    runs = [account.wait_for_execution("response", after=n, timeout=180) for n in (0, 1)]
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"], [(r.get("error"), r.get("cause")) for r in runs]
    for event in events:
        assert finding(account, provision.finding_ident(event))["Workflow"]["Status"] == "RESOLVED"
    assert lifecycle(account, instance) == "Standby" and not registered(account, tg, instance) and not behind_classic(account, instance)
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, instance).values())) == {(isolation,)}
    assert instance_tags(account, instance)["firebreak:auto-scaling-group"] == FLEET
