import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def vpc(aws):
    ec2 = aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    acl = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    return ec2, vpc_id, subnet, acl


def entry(ec2, acl, number, egress=False, cidr="198.51.100.7/32", ipv6=None):
    args = dict(NetworkAclId=acl, RuleNumber=number, Protocol="-1", RuleAction="deny", Egress=egress)
    args.update({"Ipv6CidrBlock": ipv6} if ipv6 else {"CidrBlock": cidr})
    return ec2.create_network_acl_entry(**args)


def code(e):
    return e.value.response["Error"]["Code"]


def test_twenty_rules_per_direction_counting_the_default_rule(vpc):
    ec2, _, _, acl = vpc
    for n in range(1, 20):  # 19 of ours + the default deny = 20
        entry(ec2, acl, n)
    with pytest.raises(ClientError) as e:
        entry(ec2, acl, 20)
    assert code(e) == "NetworkAclEntryLimitExceeded"
    # The other direction and the other family have quotas of their own.
    entry(ec2, acl, 20, egress=True)
    entry(ec2, acl, 21, ipv6="2001:db8::1/128")


def test_rule_numbers_and_cidrs_are_checked(vpc):
    ec2, _, _, acl = vpc
    for bad in (0, 32767, 40000):
        with pytest.raises(ClientError) as e:
            entry(ec2, acl, bad)
        assert code(e) == "InvalidParameterValue", bad
    for cidr in ("198.51.100.7", "198.51.100.7/33", "10.0.0.1/8", "not-a-cidr"):
        with pytest.raises(ClientError) as e:
            entry(ec2, acl, 10, cidr=cidr)
        assert code(e) == "InvalidParameterValue", cidr
    with pytest.raises(ClientError):
        entry(ec2, acl, 11, ipv6="198.51.100.0/24")
    entry(ec2, acl, 32766)


def test_security_groups_must_exist_and_share_the_vpc(vpc):
    ec2, vpc_id, subnet, _ = vpc
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    mine = ec2.create_security_group(GroupName="isolation", Description="x", VpcId=vpc_id)["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    theirs = ec2.create_security_group(GroupName="other", Description="x", VpcId=other_vpc)["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=["sg-0123456789abcdef0"])
    assert code(e) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[theirs])
    assert code(e) == "InvalidParameterValue"
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[mine])
    groups = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
    assert [g["GroupId"] for g in groups] == [mine]

    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=instance, Groups=["sg-0123456789abcdef0"])
    assert code(e) == "InvalidGroup.NotFound"


def test_an_interface_has_only_its_own_groups(vpc):
    ec2, vpc_id, subnet, _ = vpc
    web = ec2.create_security_group(GroupName="web", Description="x", VpcId=vpc_id)["GroupId"]
    isolation = ec2.create_security_group(GroupName="isolation", Description="x", VpcId=vpc_id)["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[web])["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[isolation])
    groups = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
    assert [g["GroupId"] for g in groups] == [isolation]
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [isolation]


def test_dry_run_nacl_entries_change_nothing(vpc):
    ec2, _, _, acl = vpc

    def numbers():
        return sorted(e["RuleNumber"] for e in ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"])

    before = numbers()
    with pytest.raises(ClientError) as e:
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.7/32", DryRun=True)
    assert code(e) == "DryRunOperation"
    assert numbers() == before
    entry(ec2, acl, 80)
    with pytest.raises(ClientError) as e:
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Egress=False, DryRun=True)
    assert code(e) == "DryRunOperation"
    assert 80 in numbers()


def test_a_taken_rule_number_and_a_missing_entry_are_refused_as_aws_does(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.1/32")
    with pytest.raises(ClientError) as e:
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.2/32")
    assert e.value.response["Error"]["Code"] == "NetworkAclEntryAlreadyExists"
    # The same number the other way is another entry.
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Protocol="-1", RuleAction="deny", Egress=True, CidrBlock="198.51.100.2/32")
    with pytest.raises(ClientError) as e:
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=81, Egress=False)
    assert e.value.response["Error"]["Code"] == "InvalidNetworkAclEntry.NotFound"


def test_only_an_in_service_instance_enters_standby_as_in_aws(aws):
    ec2, autoscaling = aws("ec2"), aws("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_launch_template(LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="fleet", LaunchTemplate={"LaunchTemplateName": "fleet"}, MinSize=1, MaxSize=2, DesiredCapacity=1, VPCZoneIdentifier=subnet)
    instance = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["fleet"])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    autoscaling.enter_standby(AutoScalingGroupName="fleet", InstanceIds=[instance], ShouldDecrementDesiredCapacity=False)
    # A second response for the same instance: Auto Scaling refuses it.
    with pytest.raises(ClientError) as e:
        autoscaling.enter_standby(AutoScalingGroupName="fleet", InstanceIds=[instance], ShouldDecrementDesiredCapacity=False)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "is not in InService" in e.value.response["Error"]["Message"]
    state = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"][0]["LifecycleState"]
    assert state == "Standby"
    # Released: back InService once; a second release is refused the same way.
    autoscaling.exit_standby(AutoScalingGroupName="fleet", InstanceIds=[instance])
    state = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"][0]["LifecycleState"]
    assert state == "InService"
    with pytest.raises(ClientError) as e:
        autoscaling.exit_standby(AutoScalingGroupName="fleet", InstanceIds=[instance])
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "is not in Standby" in e.value.response["Error"]["Message"]
