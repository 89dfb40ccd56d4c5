"""factory_boy factories of the images app."""

import hashlib

import factory

from images.models import BaseImage, ImageVersion, Registry
from portal.models import Team


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = "platform"
    is_platform = True


class RegistryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Registry
        django_get_or_create = ("name",)

    name = "local"
    url = "http://127.0.0.1:5000"
    tls_verify = False


class BaseImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BaseImage

    name = factory.Sequence(lambda n: f"runtime/image{n}")
    kind = "runtime"
    os_family = "debian"
    os_version = "12"
    owner_team = factory.SubFactory(TeamFactory)
    registry = factory.SubFactory(RegistryFactory)
    status = "approved"


class ImageVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImageVersion

    base_image = factory.SubFactory(BaseImageFactory)
    tag = "12"
    tags = factory.LazyAttribute(lambda o: [o.tag])
    digest = factory.Sequence(lambda n: "sha256:" + hashlib.sha256(str(n).encode()).hexdigest())
    registry = factory.SelfAttribute("base_image.registry")
    size = 30_000_000
    arch = "amd64"
    state = "approved"
