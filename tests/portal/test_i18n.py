"""简体中文 and English: a complete catalog, the language negotiation, localised pages and API."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.i18n_support import PO, compile_catalog

ROOT = Path(settings.BASE_DIR)


def _statistics(po: Path) -> str:
    proc = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_the_committed_catalog_has_no_untranslated_or_fuzzy_entry() -> None:
    stats = _statistics(PO)
    assert re.search(r"^\d+ translated messages?\.$", stats.strip().splitlines()[-1]), stats
    assert "untranslated" not in stats and "fuzzy" not in stats, stats


def test_the_catalog_holds_every_string_the_source_marks(tmp_path: Path) -> None:
    """makemessages on a copy of the source adds nothing untranslated (run it, then translate)."""
    for name in ("manage.py",):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("portal", "images", "deployments", "templates", "locale"):
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "manage.py",
            "makemessages",
            "-l",
            "zh_Hans",
            "--no-obsolete",
            "--add-location=file",
            "-v0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    stats = _statistics(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    assert "untranslated" not in stats and "fuzzy" not in stats, (
        f"{stats}: run `manage.py makemessages -l zh_Hans --ignore=.venv --ignore=node_modules "
        "--ignore=var --ignore=tests --ignore=bench --no-obsolete --add-location=file` and "
        "translate the new entries"
    )


@pytest.fixture
def zh_catalog() -> None:
    compile_catalog()


def test_english_is_the_default(client, db) -> None:
    body = client.get(reverse("login")).content.decode()
    assert '<html lang="en"' in body and "Log in" in body and "简体中文" in body


@pytest.mark.parametrize("header", ["zh-Hans", "zh-CN,zh;q=0.9,en;q=0.5", "zh"])
def test_accept_language_picks_simplified_chinese(client, db, zh_catalog, header: str) -> None:
    body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=header).content.decode()
    assert '<html lang="zh-hans"' in body
    assert "<h1>登录</h1>" in body and "用户名" in body
    assert ">English</button>" in body  # the switcher offers the other language


def test_the_switcher_stores_the_choice_in_a_cookie(client, db, zh_catalog) -> None:
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("login")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>登录</h1>" in body  # the cookie wins over Accept-Language
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "<h1>Log in</h1>" in client.get(reverse("login")).content.decode()


def test_an_unknown_language_falls_back_to_english(client, db) -> None:
    body = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="tlh").content.decode()
    assert '<html lang="en"' in body


def test_catalog_page_badges_dates_and_choices_in_chinese(client, developer, zh_catalog) -> None:
    from tests.images.factories import BaseImageFactory

    image = BaseImageFactory(name="runtime/zh-demo", status="deprecated")
    client.force_login(developer)
    zh = client.get(reverse("images:base-image-list"), HTTP_ACCEPT_LANGUAGE="zh-Hans")
    body = zh.content.decode()
    assert "基础镜像目录" in body and "镜像目录</a>" in body
    assert 'class="badge badge-deprecated"' in body and ">已废弃</span>" in body
    en = client.get(reverse("images:base-image-list")).content.decode()
    assert ">deprecated</span>" in en and "Base image catalog" in en
    detail = client.get(
        reverse("images:base-image-detail", args=[image.pk]), HTTP_ACCEPT_LANGUAGE="zh-Hans"
    ).content.decode()
    assert "如何使用" in detail or "版本" in detail


def test_dates_follow_the_language() -> None:
    import datetime as dt

    from django.utils import formats, translation

    moment = dt.datetime(2026, 3, 7, 9, 5, 0)
    with translation.override("en"):
        assert formats.date_format(moment, "SHORT_DATETIME_FORMAT") == "2026-03-07 09:05"
    with translation.override("zh-hans"):
        assert formats.date_format(moment, "SHORT_DATETIME_FORMAT") == "2026年3月7日 09:05"
        assert formats.number_format(1234.5, 1) == "1234.5"


def test_flash_messages_are_translated(client, developer, zh_catalog) -> None:
    client.force_login(developer)
    response = client.post(
        reverse("token-list"), {"revoke": "not-a-number"}, HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    assert response.status_code == 400
    assert "请选择要吊销的令牌：`revoke` 必须是它的 ID。" in response.content.decode()


def test_api_error_detail_in_the_requested_language(client, db, zh_catalog) -> None:
    url = "/api/v1/base-images/"
    en = client.get(url)
    zh = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert en.status_code == zh.status_code == 401
    assert en.json()["detail"] != zh.json()["detail"]
    assert re.search(r"[\u4e00-\u9fff]", zh.json()["detail"]), zh.json()


def test_api_field_names_and_enum_values_stay_untranslated(
    token_client, service_team, zh_catalog
) -> None:
    from tests.images.factories import BaseImageFactory

    BaseImageFactory(name="runtime/zh-api", status="deprecated")
    client = token_client(service_team, ["images:read"])
    en = client.get("/api/v1/base-images/").json()
    zh = client.get("/api/v1/base-images/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    assert zh == en  # the same keys and enum values ("deprecated", "runtime") in any language
    assert "deprecated" in str(zh)


def test_password_login_works_in_chinese(client, developer, zh_catalog) -> None:
    response = client.post(
        reverse("login"),
        {"username": developer.username, "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )
    assert response.status_code == 302


def test_a_permission_error_is_one_chinese_sentence(
    client, make_user, service_team, zh_catalog
) -> None:
    """`what=` phrases and role names follow the language: no English inside the Chinese."""
    from portal.models import Team

    make_user("mia-maint", service_team, "maintainer")
    client.force_login(make_user("oscar-orders", Team.objects.create(name="orders"), "maintainer"))
    body = {"name": "zh-refused", "team": "payments"}
    en = client.post("/api/v1/services/", body, content_type="application/json")
    zh = client.post(
        "/api/v1/services/", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    assert en.status_code == zh.status_code == 403
    assert en.json()["detail"] == (
        "You are not a maintainer of team payments: only team payments (maintainer or above) "
        "may create its services. Ask one of them: mia-maint."
    )
    assert zh.json()["detail"] == (
        "你不是团队 payments 的维护者：只有团队 payments 中维护者及以上角色的成员可以"
        "为其创建服务。请联系其中一位：mia-maint。"
    )


def test_a_service_layer_validation_error_follows_the_language(
    client, make_user, service_team, zh_catalog
) -> None:
    client.force_login(make_user("mia-maint", service_team, "maintainer"))
    body = {"name": "new", "team": "payments"}
    en = client.post("/api/v1/services/", body, content_type="application/json")
    zh = client.post(
        "/api/v1/services/", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    assert en.status_code == zh.status_code == 400, en.json()
    assert en.json()["errors"] == {
        "name": ["'new' is reserved (the page /services/new/); choose another name."]
    }
    assert zh.json()["errors"] == {
        "name": ["'new' 是保留名称（页面 /services/new/）；请换一个名称。"]
    }
    assert zh.json()["code"] == en.json()["code"] == "invalid"  # codes stay machine-readable


@pytest.mark.parametrize(
    ("step", "chinese"),
    [
        ("checking invoices 1.4.2 (x86_64)", "正在检查 invoices 1.4.2（x86_64）"),
        ("reading server path /srv/osv.zip", "正在读取服务器路径 /srv/osv.zip"),
        ("source build #4: invoices 1.2.0", "源码构建 #4：invoices 1.2.0"),
        ("something no pattern knows", "something no pattern knows"),
    ],
)
def test_job_steps_are_shown_in_the_readers_language(zh_catalog, step: str, chinese: str) -> None:
    from django.utils import translation

    from portal.job_steps import job_step_display

    with translation.override("zh-hans"):
        assert job_step_display(step) == chinese
    assert job_step_display(step) == step  # English: the step as the worker wrote it
