import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import TestCase

from core.models import Client, ExpertiseArea, KnowledgeBaseLink, Project, ProjectAgent

from .factories import make_world


class BaseFieldsTests(TestCase):
    def test_uuid_pk_and_timestamps(self):
        client = Client.objects.create(name="Acme")
        self.assertIsInstance(client.pk, uuid.UUID)
        self.assertIsNotNone(client.created_at)
        self.assertIsNotNone(client.updated_at)
        before = client.updated_at
        client.name = "Acme Inc."
        client.save()
        client.refresh_from_db()
        self.assertGreaterEqual(client.updated_at, before)
        self.assertEqual(str(client), "Acme Inc.")


class ExpertiseAreaTests(TestCase):
    def test_name_unique_case_insensitive_in_db(self):
        ExpertiseArea.objects.create(name="Finance")
        with self.assertRaises(IntegrityError), transaction.atomic():
            ExpertiseArea.objects.create(name="FINANCE")

    def test_name_unique_case_insensitive_validation(self):
        ExpertiseArea.objects.create(name="Legal")
        with self.assertRaises(ValidationError) as ctx:
            ExpertiseArea(name="legal").full_clean()
        self.assertIn("already exists", str(ctx.exception))


class RelationTests(TestCase):
    def test_project_relations(self):
        world = make_world()
        project = world["project"]
        self.assertEqual(project.client.name, "Acme")
        self.assertEqual(
            sorted(project.agents.values_list("name", flat=True)), ["Accountant", "Helper"]
        )
        self.assertEqual(ProjectAgent.objects.filter(project=project).count(), 2)
        self.assertEqual(list(project.users.all()), [world["user"]])
        self.assertEqual(world["agents"][0].expertise_area, world["area"])

    def test_project_agent_link_unique(self):
        world = make_world()
        with self.assertRaises(IntegrityError), transaction.atomic():
            ProjectAgent.objects.create(project=world["project"], agent=world["agents"][0])

    def test_knowledge_base_unique_per_project(self):
        world = make_world()
        with self.assertRaises(IntegrityError), transaction.atomic():
            KnowledgeBaseLink.objects.create(
                project=world["project"], external_id="kb-hash-1", name="Duplicate"
            )
        # Same external id in another project is fine.
        other = Project.objects.create(name="Beta", client=world["client"])
        KnowledgeBaseLink.objects.create(project=other, external_id="kb-hash-1", name="Manuals")

    def test_expertise_area_delete_keeps_agent(self):
        world = make_world()
        world["area"].delete()
        agent = world["agents"][0]
        agent.refresh_from_db()
        self.assertIsNone(agent.expertise_area)

    def test_chat_session_json_data(self):
        world = make_world()
        chat = world["chat"]
        chat.refresh_from_db()
        self.assertEqual(chat.data, {"messages": [{"role": "user"}]})
