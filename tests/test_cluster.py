"""layerlens.cluster on what `scontrol` prints for nodes the test cluster does not have (GPUs, GPU models, reserved
memory, time limits). The pre-flight on a real cluster is tested in tests/test_slurm.py."""

from layerlens.cluster import Cluster, Request, check_requests, parse_gres, parse_nodes, parse_partitions

# `scontrol show node -o` / `show partition -o` lines as SLURM 22.05 prints them (the test cluster's own lines,
# with a GPU node's Gres, CPUEfctv and MemSpecLimit put in)
NODES = """\
NodeName=gpu01 Arch=x86_64 CoresPerSocket=16 CPUAlloc=0 CPUEfctv=30 CPUTot=32 CPULoad=0.01 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:a100:4(S:0-1) NodeAddr=gpu01 NodeHostName=gpu01 Version=22.05.8 OS=Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC RealMemory=256000 AllocMem=0 FreeMem=250000 Sockets=2 Boards=1 MemSpecLimit=16000 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu  BootTime=2026-11-28T10:31:33 SlurmdStartTime=2026-11-28T10:45:30
NodeName=cpu01 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=64 CPUTot=64 CPULoad=1.96 AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=cpu01 NodeHostName=cpu01 Version=22.05.8 OS=Linux 6.1.0 #1 SMP RealMemory=512000 AllocMem=0 FreeMem=19786 Sockets=2 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=cpu,all  BootTime=2026-11-28T10:31:33
"""  # noqa: E501
PARTITIONS = """\
PartitionName=gpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=2-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=gpu01 PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=32 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED
PartitionName=cpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=04:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=48 Nodes=cpu01 PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=64 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED
"""  # noqa: E501


def cluster():
    nodes = parse_nodes(NODES)
    return Cluster(parse_partitions(PARTITIONS, nodes), "accounting_storage/slurmdbd", 300)


def test_gres_strings_give_gpus_by_model():
    assert parse_gres("gpu:a100:4(S:0-1)") == {"a100": 4}
    assert parse_gres("gpu:2,mps:200") == {"": 2}
    assert parse_gres("gpu:tesla:2(S:0,1),gpu:v100:1") == {"tesla": 2, "v100": 1}
    assert parse_gres("(null)") == {} and parse_gres("") == {}


def test_nodes_and_partitions_as_scontrol_prints_them():
    gpu, cpu = parse_nodes(NODES)
    # CPUEfctv (cores left to jobs) over CPUTot; RealMemory less the memory kept for the system
    assert (gpu.name, gpu.cpus, gpu.mem_mb, gpu.gpus, gpu.partitions) == ("gpu01", 30, 240000, {"a100": 4}, ("gpu",))
    assert (cpu.cpus, cpu.mem_mb, cpu.gpus, cpu.partitions) == (64, 512000, {}, ("cpu", "all"))
    parts = parse_partitions(PARTITIONS, [gpu, cpu])
    assert parts["gpu"].max_time_min == 2 * 24 * 60 and not parts["gpu"].default
    assert parts["cpu"].default and parts["cpu"].max_time_min == 240 and parts["cpu"].max_cpus_per_node == 48
    assert [n.name for n in parts["cpu"].nodes] == ["cpu01"]


def request(**kw):
    base = {"kind": "rule finetune", "rules": ("finetune",), "partition": None, "cpus": 2, "mem_mb": 16000,
            "gpus": 0, "gpu_model": None, "runtime_min": 60}
    return Request(**{**base, **kw})


def test_what_no_node_of_the_partition_has_is_named_with_the_setting_to_change():
    c = cluster()
    assert check_requests([request(), request(partition="gpu", gpus=2, gpu_model="a100")], c) == []
    (gpu,) = check_requests([request(gpus=1)], c)
    assert "in partition 'cpu' (the default), it has no GPUs" in gpu and "LAYERLENS_GPUS=0" in gpu
    (model,) = check_requests([request(partition="gpu", gpus=1, gpu_model="h100")], c)
    assert "no node has 1x h100" in model and "gpu_model" in model
    (cpus,) = check_requests([request(cpus=56)], c)  # the node has 64, the partition lets a job have 48
    assert "no node has 56 CPUs for jobs (MaxCPUsPerNode=48)" in cpus and "set-threads: finetune" in cpus
    (mem,) = check_requests([request(partition="gpu", gpus=1, mem_mb=250000)], c)  # 256000 less 16000 reserved
    assert "no node has 250000 MB for jobs" in mem and "largest node: gpu01 (30 CPUs, 240000 MB, 4x a100)" in mem
    (time,) = check_requests([request(runtime_min=300)], c)
    assert "its time limit is 240 min" in time and "`runtime`" in time
    (missing,) = check_requests([request(partition="a100")], c)
    assert "partition 'a100' does not exist here (partitions: gpu, cpu)" in missing
