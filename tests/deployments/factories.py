"""factory_boy factories of the deployments app."""

import hashlib

import factory

from deployments.models import BinaryVersion, Deployment, Environment, Service
from portal.models import Team
from tests.images.factories import ImageVersionFactory


class ServiceTeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = "payments"


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    name = factory.Sequence(lambda n: f"svc{n}")
    team = factory.SubFactory(ServiceTeamFactory)
    language = "c"


class BinaryVersionFactory(factory.django.DjangoModelFactory):
    """A row only (no stored file): enough for releases, lists and retention."""

    class Meta:
        model = BinaryVersion

    service = factory.SubFactory(ServiceFactory)
    version = factory.Sequence(lambda n: f"1.0.{n}")
    arch = "x86_64"
    filename = "application"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"binary {n}".encode()).hexdigest())
    file = factory.LazyAttribute(lambda o: f"binaries/sha256/{o.sha256[:2]}/{o.sha256}")
    size = 12345
    file_type = "elf"
    linkage = "dynamic"
    interpreter = "/lib64/ld-linux-x86-64.so.2"
    needed = factory.LazyFunction(lambda: ["libc.so.6"])
    min_glibc = "2.34"
    libc = "glibc"


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("name",)

    name = "prod"
    namespace = "payments-prod"
    k8s_version = "1.33"
    delivery_strategy = "hostPath"


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deployment

    service = factory.SubFactory(ServiceFactory)
    environment = factory.SubFactory(EnvironmentFactory)
    runtime_version = factory.SubFactory(ImageVersionFactory)
    binary_version = factory.SubFactory(
        BinaryVersionFactory, service=factory.SelfAttribute("..service")
    )
    env = factory.LazyFunction(lambda: [{"name": "TZ", "value": "Asia/Shanghai"}])
    ports = factory.LazyFunction(lambda: [8080])
    resources = factory.LazyFunction(
        lambda: {"cpu_request": "100m", "memory_request": "128Mi", "memory_limit": "256Mi"}
    )
