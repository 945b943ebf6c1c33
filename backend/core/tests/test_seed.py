import json
import os
from io import StringIO
from unittest import mock

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import TestCase, override_settings

from core.management.commands import seed_sample as seed
from core.models import Agent, ChatSession, Client, ExpertiseArea, KnowledgeBaseLink, Project, ProjectAgent

FAST_HASHER = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
ADMIN_ENV = {"SEED_ADMIN_EMAIL": "admin@example.com", "SEED_ADMIN_PASSWORD": "S3cret-for-tests"}


def run_seed(*args: str, env: dict | None = None) -> dict:
    out = StringIO()
    with mock.patch.dict(os.environ, ADMIN_ENV if env is None else env):
        call_command("seed_sample", "--json", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def snapshot() -> dict:
    """Every sample-relevant row, by primary key and content (timestamps aside)."""
    return {
        "clients": sorted(Client.objects.values_list("id", "name")),
        "areas": sorted(ExpertiseArea.objects.values_list("id", "name", "description")),
        "agents": sorted(Agent.objects.values_list("id", "name", "url_n8n", "expertise_area_id")),
        "projects": sorted(Project.objects.values_list("id", "name", "client_id")),
        "project_agents": sorted(ProjectAgent.objects.values_list("project_id", "agent_id")),
        "project_users": sorted(Project.users.through.objects.values_list("project_id", "user__username")),
        "users": sorted(get_user_model().objects.values_list("username", "email", "is_superuser")),
        "chats": sorted(ChatSession.objects.values_list("id", "session_key", "agent_id", "user__username")),
        "kb_links": sorted(KnowledgeBaseLink.objects.values_list("id", "external_id", "name", "project_id")),
    }


@FAST_HASHER
class SeedSampleTests(TestCase):
    def test_first_run_creates_the_admin_and_the_sample_data(self):
        report = run_seed()
        self.assertIn("admin admin@example.com", report["created"])
        self.assertEqual(report["existing"], [])
        self.assertEqual(Client.objects.count(), len(seed.CLIENTS))
        self.assertEqual(Project.objects.count(), len(seed.PROJECTS))
        self.assertEqual(Agent.objects.count(), len(seed.AGENTS))
        self.assertEqual(ExpertiseArea.objects.count(), len(seed.EXPERTISE_AREAS))
        self.assertEqual(ChatSession.objects.count(), len(seed.CHAT_SESSIONS))
        admin = get_user_model().objects.get(email="admin@example.com")
        self.assertTrue(admin.is_superuser and admin.is_staff)
        self.assertTrue(admin.check_password("S3cret-for-tests"))
        helpdesk = Project.objects.get(name="Patient Helpdesk")
        self.assertEqual(sorted(helpdesk.users.values_list("username", flat=True)), ["ana.souza", "bruno.lima"])
        self.assertEqual(helpdesk.agents.count(), 2)
        for user in get_user_model().objects.exclude(pk=admin.pk):
            self.assertFalse(user.has_usable_password(), "sample people must not be able to log in")

    def test_agents_point_at_the_stacks_own_n8n(self):
        with override_settings(N8N_BASE_URL="http://n8n:5678"):
            run_seed()
        for agent in Agent.objects.all():
            self.assertRegex(agent.url_n8n, r"^http://n8n:5678/webhook/[a-z-]+/chat$")

    def test_second_run_creates_nothing(self):
        run_seed()
        before = snapshot()
        report = run_seed()
        self.assertEqual(report["created"], [])
        self.assertEqual(report["updated"], [])
        self.assertIn("admin admin@example.com", report["existing"])
        self.assertEqual(snapshot(), before)

    def test_human_output_says_nothing_was_created(self):
        run_seed()
        out = StringIO()
        with mock.patch.dict(os.environ, ADMIN_ENV):
            call_command("seed_sample", stdout=out, stderr=StringIO())
        self.assertIn("nothing to create", out.getvalue())

    def test_deterministic_keys_across_databases(self):
        run_seed()
        first = snapshot()
        call_command("flush", "--noinput", stdout=StringIO())
        run_seed()
        self.assertEqual(snapshot(), first)
        self.assertEqual(Project.objects.get(name="Patient Helpdesk").pk, seed.sample_id("project", "patient-helpdesk"))

    def test_drifted_sample_rows_are_brought_back(self):
        run_seed()
        Agent.objects.filter(name="HR Helper").update(url_n8n="https://prod.example.com/webhook/x")
        report = run_seed()
        self.assertEqual(len(report["updated"]), 1)
        self.assertIn("url_n8n", report["updated"][0])

    def test_admin_is_skipped_with_a_warning_without_env(self):
        report = run_seed(env={"SEED_ADMIN_EMAIL": "", "SEED_ADMIN_PASSWORD": ""})
        self.assertTrue(any("admin skipped" in w for w in report["warnings"]))
        self.assertFalse(get_user_model().objects.filter(is_superuser=True).exists())

    def test_existing_admin_password_is_left_alone(self):
        run_seed()
        admin = get_user_model().objects.get(email="admin@example.com")
        admin.set_password("changed-by-a-person")
        admin.save()
        run_seed()
        admin.refresh_from_db()
        self.assertTrue(admin.check_password("changed-by-a-person"))

    def test_an_expertise_area_of_a_person_is_used_not_taken_over(self):
        mine = ExpertiseArea.objects.create(name="finance", description="mine")
        report = run_seed()
        self.assertTrue(any("Finance already exists" in w for w in report["warnings"]))
        self.assertEqual(Agent.objects.get(name="Finance Analyst").expertise_area, mine)
        run_seed("--reset")
        self.assertTrue(ExpertiseArea.objects.filter(pk=mine.pk).exists())


@FAST_HASHER
class ResetTests(TestCase):
    def setUp(self):
        # A person's data, which --reset must never touch.
        self.person = get_user_model().objects.create_user("eve", "eve@example.com", "pw-not-used-1")
        self.client_row = Client.objects.create(name="Acme Health")  # same name as a sample client
        self.area = ExpertiseArea.objects.create(name="Legal")
        self.agent = Agent.objects.create(name="Lawyer", expertise_area=self.area)
        self.project = Project.objects.create(name="Contracts", client=self.client_row)
        self.project.agents.add(self.agent)
        self.project.users.add(self.person)
        self.link = KnowledgeBaseLink.objects.create(project=self.project, external_id="mine", name="Mine")
        self.chat = ChatSession.objects.create(session_key="s-1", agent=self.agent, user=self.person)

    def test_reset_removes_only_sample_rows_then_seeds_again(self):
        run_seed()
        run_seed("--knowledge-base", "hash-1", "Sample manuals")
        helpdesk_before = Project.objects.get(pk=seed.sample_id("project", "patient-helpdesk"))
        Project.objects.filter(pk=helpdesk_before.pk).update(name="Renamed")

        report = run_seed("--reset")

        self.assertIn("project Renamed", report["removed"])
        self.assertIn("user ana.souza@sample.enlaight.local", report["removed"])
        self.assertNotIn("admin admin@example.com", report["removed"])
        for row in (self.person, self.client_row, self.area, self.agent, self.project, self.link, self.chat):
            self.assertTrue(type(row).objects.filter(pk=row.pk).exists(), f"{row!r} was removed")
        self.assertEqual(self.project.agents.count(), 1)
        self.assertEqual(list(self.project.users.all()), [self.person])
        # Seeded again, with the same keys; the sample KB link went with its project.
        self.assertEqual(Project.objects.get(pk=helpdesk_before.pk).name, "Patient Helpdesk")
        self.assertFalse(KnowledgeBaseLink.objects.filter(name="Sample manuals").exists())
        self.assertEqual(Client.objects.filter(name="Acme Health").count(), 2)
        self.assertTrue(get_user_model().objects.filter(email="admin@example.com").exists())

    def test_reset_on_an_empty_database_just_seeds(self):
        report = run_seed("--reset")
        self.assertEqual(report["removed"], [])
        self.assertEqual(Project.objects.count(), len(seed.PROJECTS) + 1)


@FAST_HASHER
class KnowledgeBaseLinkTests(TestCase):
    def test_link_goes_on_the_first_sample_project_once(self):
        run_seed()
        report = run_seed("--knowledge-base", "abc123", "Sample manuals")
        self.assertEqual(report["created"], ["knowledge-base link Sample manuals on Patient Helpdesk"])
        again = run_seed("--knowledge-base", "abc123", "Sample manuals")
        self.assertEqual(again["created"], [])
        self.assertEqual(len(again["existing"]), 1)
        link = KnowledgeBaseLink.objects.get()
        self.assertEqual(link.project.name, "Patient Helpdesk")
        self.assertEqual(link.external_id, "abc123")

    def test_a_recreated_knowledge_base_updates_the_link(self):
        run_seed()
        run_seed("--knowledge-base", "abc123", "Sample manuals")
        report = run_seed("--knowledge-base", "def456", "Sample manuals")
        self.assertEqual(len(report["updated"]), 1)
        self.assertEqual(KnowledgeBaseLink.objects.get().external_id, "def456")

    def test_link_needs_the_sample_project(self):
        with self.assertRaisesMessage(CommandError, "run `seed_sample`"):
            run_seed("--knowledge-base", "abc123", "Sample manuals")

    def test_link_does_not_seed_anything_else(self):
        run_seed()
        report = run_seed("--knowledge-base", "abc123", "Sample manuals")
        self.assertEqual(len(report["created"]) + len(report["existing"]), 1)
