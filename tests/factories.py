from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from annotation.formats import content_hash
from annotation.models import Pair, Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project {n}")


class PairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pair

    project = factory.SubFactory(ProjectFactory)
    conversation = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])
    response_a = factory.Sequence(lambda n: f"Answer A{n}.")
    response_b = factory.Sequence(lambda n: f"Answer B{n}.")
    source_label = "A"
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.conversation, o.response_a, o.response_b))
