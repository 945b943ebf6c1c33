"""Tiny helpers to build test data."""

from django.contrib.auth import get_user_model

from core.models import (
    Agent,
    ChatSession,
    Client,
    ExpertiseArea,
    KnowledgeBaseLink,
    Project,
)


def make_world():
    """One client, area, two agents, a project with both agents, one user, a KB link, a chat."""
    user = get_user_model().objects.create_user("alice", "alice@example.com", "pw-not-used-1")
    client = Client.objects.create(name="Acme")
    area = ExpertiseArea.objects.create(name="Finance", description="Money matters")
    agent_a = Agent.objects.create(
        name="Accountant",
        description="Answers finance questions",
        url_n8n="http://n8n:5678/webhook/accountant/chat",
        expertise_area=area,
    )
    agent_b = Agent.objects.create(name="Helper")
    project = Project.objects.create(name="Alpha", client=client)
    project.agents.add(agent_a, agent_b)
    project.users.add(user)
    kb = KnowledgeBaseLink.objects.create(project=project, external_id="kb-hash-1", name="Manuals")
    chat = ChatSession.objects.create(
        session_key="sess-1", agent=agent_a, user=user, data={"messages": [{"role": "user"}]}
    )
    return {
        "user": user,
        "client": client,
        "area": area,
        "agents": (agent_a, agent_b),
        "project": project,
        "kb": kb,
        "chat": chat,
    }
