"""Start and stop the sandbox's in-process controllers."""

from __future__ import annotations

import asyncio
import contextlib

from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.crds import CrdCleanup
from meshcanary.sandbox.controllers.cronjobs import CronJobController
from meshcanary.sandbox.controllers.daemonsets import DaemonSetController
from meshcanary.sandbox.controllers.deployments import DeploymentController
from meshcanary.sandbox.controllers.endpoints import EndpointsController
from meshcanary.sandbox.controllers.gc import GarbageCollector
from meshcanary.sandbox.controllers.jobs import JobController
from meshcanary.sandbox.controllers.kubelet import Kubelet
from meshcanary.sandbox.controllers.loadbalancers import LoadBalancerController
from meshcanary.sandbox.controllers.namespaces import NamespaceController
from meshcanary.sandbox.controllers.nodes import NodeController
from meshcanary.sandbox.controllers.replicasets import ReplicaSetController
from meshcanary.sandbox.controllers.scheduler import Scheduler
from meshcanary.sandbox.controllers.serviceaccounts import ServiceAccountController
from meshcanary.sandbox.controllers.statefulsets import StatefulSetController

CONTROLLERS: tuple[type[Controller], ...] = (
    GarbageCollector,
    NamespaceController,
    CrdCleanup,
    ServiceAccountController,
    NodeController,
    Scheduler,
    Kubelet,
    ReplicaSetController,
    DeploymentController,
    StatefulSetController,
    DaemonSetController,
    JobController,
    CronJobController,
    EndpointsController,
    LoadBalancerController,
)


def start(cluster: Cluster, context: Context | None = None) -> list[asyncio.Task[None]]:
    """Start every controller; each runs until its task is cancelled by `stop()`."""
    context = context or Context()
    return [
        asyncio.create_task(controller(cluster, context).run(), name=controller.__name__)
        for controller in CONTROLLERS
    ]


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
