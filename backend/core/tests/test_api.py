from unittest import mock

from django.test import TestCase

from core import version

from .factories import make_world


class ApiIndexTests(TestCase):
    def test_index_lists_endpoints(self):
        response = self.client.get("/api/")
        self.assertEqual(response.status_code, 200)
        endpoints = response.json()["endpoints"]
        for key, url in {
            "clients": "/api/clients/",
            "projects": "/api/projects/",
            "agents": "/api/agents/",
            "expertise_areas": "/api/expertise-areas/",
            "knowledge_bases": "/api/knowledge-bases/",
            "chat_sessions": "/api/chat-sessions/",
            "health": "/api/health/",
            "ready": "/api/health/ready/",
            "version": "/api/version/",
        }.items():
            self.assertEqual(endpoints[key], url)


class ApiListTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.world = make_world()

    def get_json(self, url):
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        return response.json()

    def test_empty_lists_are_valid(self):
        for url in ("/api/clients/", "/api/agents/"):
            data = self.get_json(url)
            self.assertIn("results", data)

    def test_clients(self):
        data = self.get_json("/api/clients/")
        self.assertEqual(data["count"], 1)
        self.assertEqual(data["results"][0]["name"], "Acme")
        self.assertEqual(data["results"][0]["id"], str(self.world["client"].id))
        self.assertIn("created_at", data["results"][0])

    def test_projects_include_client_agents_and_kbs(self):
        data = self.get_json("/api/projects/")
        self.assertEqual(data["count"], 1)
        project = data["results"][0]
        self.assertEqual(project["name"], "Alpha")
        self.assertEqual(project["client"]["name"], "Acme")
        self.assertEqual(sorted(a["name"] for a in project["agents"]), ["Accountant", "Helper"])
        self.assertEqual(
            project["knowledge_bases"],
            [{"id": str(self.world["kb"].id), "external_id": "kb-hash-1", "name": "Manuals"}],
        )
        self.assertEqual(project["users"], [self.world["user"].pk])

    def test_agents(self):
        data = self.get_json("/api/agents/")
        by_name = {a["name"]: a for a in data["results"]}
        self.assertEqual(by_name["Accountant"]["expertise_area"]["name"], "Finance")
        self.assertEqual(
            by_name["Accountant"]["url_n8n"], "http://n8n:5678/webhook/accountant/chat"
        )
        self.assertIsNone(by_name["Helper"]["expertise_area"])

    def test_expertise_areas(self):
        data = self.get_json("/api/expertise-areas/")
        self.assertEqual(
            [(a["name"], a["description"]) for a in data["results"]], [("Finance", "Money matters")]
        )

    def test_knowledge_bases_and_project_filter(self):
        data = self.get_json("/api/knowledge-bases/")
        self.assertEqual(data["results"][0]["project"], str(self.world["project"].id))
        data = self.get_json(f"/api/knowledge-bases/?project={self.world['project'].id}")
        self.assertEqual(data["count"], 1)
        data = self.get_json("/api/knowledge-bases/?project=00000000-0000-0000-0000-000000000000")
        self.assertEqual(data["count"], 0)
        self.assertEqual(self.client.get("/api/knowledge-bases/?project=nope").status_code, 400)

    def test_chat_sessions(self):
        data = self.get_json("/api/chat-sessions/")
        chat = data["results"][0]
        self.assertEqual(chat["session_key"], "sess-1")
        self.assertEqual(chat["agent"]["name"], "Accountant")
        self.assertEqual(chat["user"]["username"], "alice")
        self.assertEqual(chat["data"], {"messages": [{"role": "user"}]})

    def test_pagination(self):
        data = self.get_json("/api/agents/?limit=1&offset=1")
        self.assertEqual(data["count"], 2)
        self.assertEqual(data["limit"], 1)
        self.assertEqual([a["name"] for a in data["results"]], ["Helper"])
        data = self.get_json("/api/agents/?limit=junk")
        self.assertEqual(data["limit"], 100)

    def test_read_only(self):
        response = self.client.post("/api/clients/", {"name": "x"})
        self.assertEqual(response.status_code, 405)


class VersionTests(TestCase):
    def test_version_from_module(self):
        response = self.client.get("/api/version/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"version": version.VERSION})

    def test_version_read_per_request(self):
        with mock.patch.object(version, "VERSION", "9.9.9-test"):
            self.assertEqual(self.client.get("/api/version/").json(), {"version": "9.9.9-test"})
