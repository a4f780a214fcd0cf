"""The catalog of plans, systems and locations offered when creating."""

from __future__ import annotations

import json

import pytest

from vpsbot.catalog import Catalog, PlanChoice, SystemChoice
from vpsbot.errors import ConfigError
from vpsbot.vps import Server


def _server(plan_id: int, plan_name: str, os_id: int, location: str) -> Server:
    return Server.from_dict(
        {
            "id": 1,
            "name": "x",
            "status": "active",
            "location": location,
            "plan": {"id": plan_id, "name": plan_name, "vcpus": 8, "memory": 16384},
            "os": {"id": os_id, "name": f"System {os_id}"},
        }
    )


def test_the_shipped_catalog_holds_what_the_providers_docs_name():
    catalog = Catalog.load()

    assert [(plan.id, plan.label) for plan in catalog.plans] == [
        (1, "Standard VPS · 2 vCPU · 4 GB · 80 GB"),
        (2, "Performance VPS · 4 vCPU · 8 GB · 160 GB"),
    ]
    assert [(s.id, s.name) for s in catalog.systems] == [
        (5, "Ubuntu 22.04 LTS"),
        (3, "Debian 12"),
    ]
    assert catalog.locations == ("us-west", "us-east")


def test_choices_are_found_by_id_name_or_label_in_any_case():
    catalog = Catalog.load()

    assert catalog.plan("2").id == 2
    assert catalog.plan("  standard VPS ").id == 1
    assert catalog.plan("Performance VPS · 4 vCPU · 8 GB · 160 GB").id == 2
    assert catalog.plan("Huge") is None
    assert catalog.plan("9") is None
    assert catalog.system("debian 12").id == 3
    assert catalog.location("US-East") == "us-east"
    assert catalog.location("eu-central") is None


def test_servers_add_what_the_file_lacks_and_the_file_wins_for_its_own_ids():
    catalog = Catalog.load().with_servers(
        [_server(7, "Big VPS", 9, "eu-central"), _server(1, "Renamed", 5, "US-WEST")]
    )

    assert [plan.id for plan in catalog.plans] == [1, 2, 7]
    assert catalog.plan("1").name == "Standard VPS"
    assert catalog.plan("7").label == "Big VPS · 8 vCPU · 16 GB"
    assert [s.id for s in catalog.systems] == [5, 3, 9]
    assert catalog.locations == ("us-west", "us-east", "eu-central")


def test_an_operators_toml_file_replaces_the_shipped_one(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(
        'locations = ["fra-1"]\n'
        '[[plans]]\nid = 11\nname = "Tiny"\nmemory = 512\n'
        '[[os]]\nid = 4\nname = "Alpine"\n'
    )

    catalog = Catalog.load(path)

    assert catalog == Catalog(
        (PlanChoice(11, "Tiny", memory=512),), (SystemChoice(4, "Alpine"),), ("fra-1",)
    )
    assert catalog.plans[0].label == "Tiny · 512 MB"


def test_a_json_file_is_read_as_json(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"plans": [{"id": 3, "name": "Small"}]}))

    catalog = Catalog.load(path)

    assert catalog.plans == (PlanChoice(3, "Small"),)
    assert catalog.systems == ()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("plans = 3", "plans must be a list of tables"),
        (
            '[[plans]]\nid = "one"\nname = "A"',
            "plans entry 1: id must be a whole number",
        ),
        ("[[os]]\nid = 1", "os entry 1: name must be a non-empty text"),
        (
            '[[plans]]\nid = 1\nname = "A"\n[[plans]]\nid = 1\nname = "B"',
            "plans names 1 twice",
        ),
        ("locations = [1]", "locations must be a list of data-centre codes"),
        ("plans = [", "is not valid TOML"),
        ('location = ["us-west"]', "the catalog has unknown key 'location'"),
        (
            '[[plans]]\nid = 1\nname = "A"\nram = 4',
            "plans entry 1 has unknown key 'ram'",
        ),
        (
            f'locations = ["{"x" * 65}"]',
            "locations must be a list of data-centre codes",
        ),
        ('locations = ["us west"]', "locations must be a list of data-centre codes"),
        ('[[os]]\nid = 9223372036854775808\nname = "A"', "id must be a whole number"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_setting(tmp_path, content, problem):
    path = tmp_path / "catalog.toml"
    path.write_text(content)

    with pytest.raises(ConfigError) as caught:
        Catalog.load(path)

    message = str(caught.value)
    assert message.startswith(f"VPSBOT_CATALOG: {path}")
    assert problem in message
    assert "\n" not in message


def test_a_long_plan_name_is_shortened_and_its_sizes_kept():
    plan = PlanChoice(
        7,
        "Memory Optimised Dedicated CPU (Gen 3, AMD EPYC) VPS with extra everything",
        vcpus=8,
        memory=32768,
        storage=640,
    )

    assert len(plan.label) == 75
    assert plan.label.endswith("… · 8 vCPU · 32 GB · 640 GB")
    assert PlanChoice(1, "A", memory=1000).label == "A · 1000 MB"
    assert PlanChoice(1, "A", memory=1536).label == "A · 1.5 GB"


def test_only_plain_digits_are_ids():
    catalog = Catalog.load()

    assert catalog.plan("١") is None
    assert catalog.plan("1" * 5000) is None
    assert catalog.plan("0001").id == 1
