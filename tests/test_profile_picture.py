"""Profile pictures: a member's own upload and removal, what is stored, who sees it.

Every upload is decoded and re-encoded (``crm_rbac_plugin.images``), so the
stored bytes are the plugin's own WebP square, with no EXIF left; files that
are not PNG, JPEG, GIF or WebP pictures (SVG, HTML, a PNG header followed by
junk, a truncated file, an oversized upload, a decompression bomb) are
refused on the form's field with nothing stored. The picture is served to
signed-in members of the owner's workspace and to nobody else, with one 404
for every other case. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import team, tokens
from tests.rbac_helpers import (
    fast_passwords,  # noqa: F401  (autouse fixture)
    multipart,
)
from tests.test_api import Api

#: GPS IFD pointer, and two of its tags, as a camera writes them.
GPS_IFD, GPS_LATITUDE_REF, GPS_LATITUDE = 0x8825, 1, 2


def picture(fmt: str, size: tuple[int, int] = (320, 200), mode: str = "RGB",
            **save: Any) -> bytes:
    """A small picture of ``fmt`` made by Pillow: a red left half and a blue right half."""
    image = Image.new(mode, size, (200, 30, 30))
    image.paste((30, 30, 200), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG carrying an EXIF block with a GPS position and a camera maker."""
    exif = Image.Exif()
    exif[0x010F] = "Spy Camera Co"
    exif[GPS_IFD] = {GPS_LATITUDE_REF: "N", GPS_LATITUDE: (48.0, 51.0, 24.0)}
    data = picture("JPEG", (640, 480), exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the test's own premise
    return data


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (with a valid CRC)."""
    png = picture("PNG", (1, 1))
    header = png[12:16] + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + header + struct.pack(">I", zlib.crc32(header)) + png[33:]


@pytest.fixture
def client_of(app: Flask, world: SimpleNamespace) -> Any:
    def make(key: str, workspace: Any = None) -> FlaskClient:
        client = app.test_client(user=world.users[key])
        with client.session_transaction() as sess:
            sess[app.config["RBAC_SESSION_KEY"]] = (workspace or world.ws).id
        return client
    return make


def upload(client: FlaskClient, data: bytes, name: str = "me.png") -> Any:
    return client.post("/settings/profile/picture", **multipart({"picture": (data, name)}))


def stored() -> list[Any]:
    with rbac.system():
        db.session.expire_all()
        return list(db.session.scalars(sa.select(rbac.models.ProfilePicture)))


def events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == action).order_by(A.id)))


def picture_url(client: FlaskClient, page: str = "/settings/profile") -> str | None:
    """The member picture URL the page shows, if any."""
    found = re.search(r'src="(/settings/members/\d+/picture\?v=[0-9a-f]+)"', client.get(page).text)
    return found.group(1) if found else None


def same_page(a: str, b: str) -> bool:
    """Whether two pages are the same but for their per-response tokens (CSRF, nonces)."""
    token = re.compile(r'((?:nonce|value|content)=")[^"]{20,}(")')
    return token.sub(r"\1\2", a) == token.sub(r"\1\2", b)


# -- upload ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_each_format_is_stored_as_the_plugins_own_square(client_of: Any, world: SimpleNamespace,
                                                         fmt: str) -> None:
    original = picture(fmt)
    response = upload(client_of("member"), original, f"me.{fmt.lower()}")
    assert response.status_code == 302, response.text
    assert response.headers["Location"].endswith("/settings/profile#profile-picture")
    [row] = stored()
    assert row.user_id == world.users["member"].id
    assert row.content_type == "image/webp" and row.data != original
    image = Image.open(io.BytesIO(row.data))
    assert image.format == "WEBP" and image.size == (256, 256)
    # Square-cropped around the centre: red on the left, blue on the right.
    red, blue = image.convert("RGB").getpixel((10, 128)), image.convert("RGB").getpixel((245, 128))
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]


def test_the_stored_picture_carries_no_exif(client_of: Any) -> None:
    assert upload(client_of("member"), jpeg_with_gps(), "holiday.jpg").status_code == 302
    [row] = stored()
    image = Image.open(io.BytesIO(row.data))
    assert dict(image.getexif()) == {} and not image.getexif().get_ifd(GPS_IFD)
    assert not {"exif", "xmp", "icc_profile"} & set(image.info)
    assert b"Exif" not in row.data and b"Spy Camera" not in row.data


def test_a_new_upload_replaces_the_picture_and_its_url(client_of: Any) -> None:
    client = client_of("member")
    upload(client, picture("PNG"))
    first = picture_url(client)
    upload(client, picture("PNG", (100, 300), mode="RGB"))
    second = picture_url(client)
    assert len(stored()) == 1 and first and second and first != second


BAD_FILES = {
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "me.svg", 400),
    "html": (b"<!doctype html><html><body><script>alert(1)</script></body></html>",
             "me.png", 400),
    "png-header-with-junk": (b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 10,
                             "me.png", 400),
    "truncated": (picture("PNG", (200, 200))[:120], "me.png", 400),
    "truncated-jpeg": (picture("JPEG", (400, 400))[:600], "me.jpg", 400),
    "tiff": (picture("TIFF"), "me.tif", 400),
    "empty": (b"", "me.png", 400),
    "bomb": (png_bomb(7000, 7000), "me.png", 400),         # over the plugin's pixel limit
    "huge-bomb": (png_bomb(60000, 60000), "me.png", 400),  # over Pillow's own guard too
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_file_that_is_not_a_picture_is_refused_on_the_field(client_of: Any, kind: str) -> None:
    data, name, status = BAD_FILES[kind]
    response = upload(client_of("member"), data, name)
    assert response.status_code == status
    # The profile page again, the error under the file field.
    assert 'id="picture-errors"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert stored() == [] and events("profile_picture.set") == []


def test_an_oversized_upload_is_refused_on_the_field(app: Flask, client_of: Any) -> None:
    app.config["RBAC_PROFILE_PICTURE_MAX_BYTES"] = 1000
    response = upload(client_of("member"), picture("PNG", (400, 400)) + b"\0" * 2000)
    assert response.status_code == 413
    assert 'id="picture-errors"' in response.text and "larger than 1,000 bytes" in response.text
    assert stored() == []


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(app: Flask,
                                                                client_of: Any) -> None:
    app.config["RBAC_PROFILE_PICTURE_MAX_BYTES"] = 1000
    response = upload(client_of("member"), b"\0" * 200_000)
    assert response.status_code == 413 and stored() == []


def test_the_demo_takes_a_picture_larger_than_a_pages_body_limit(app: Flask,
                                                                  client_of: Any) -> None:
    """A 1.5 MB photo passes the demo's 1 MiB body cap: the route has its own."""
    noisy = Image.effect_noise((1000, 1000), 120).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert app.config["MAX_CONTENT_LENGTH"] < len(out.getvalue()) < 2 * 1024 * 1024
    assert upload(client_of("member"), out.getvalue()).status_code == 302
    assert len(stored()) == 1


def test_no_file_is_refused_on_the_field(client_of: Any) -> None:
    response = client_of("member").post("/settings/profile/picture", data={})
    assert response.status_code == 400 and 'id="picture-errors"' in response.text
    assert stored() == []


# -- removal -----------------------------------------------------------------------------------

def test_removal_shows_the_initials_again(client_of: Any, world: SimpleNamespace) -> None:
    client = client_of("member")
    upload(client, picture("PNG"))
    url = picture_url(client)
    assert url is not None
    response = client.post("/settings/profile/picture/delete")
    assert response.status_code == 302 and stored() == []
    assert picture_url(client) is None
    assert client.get(url).status_code == 404
    assert 'rbac-avatar--initials' in client.get("/settings/profile").text
    # Removing nothing writes nothing.
    assert client.post("/settings/profile/picture/delete").status_code == 302
    assert len(events("profile_picture.removed")) == 1


# -- serving -----------------------------------------------------------------------------------

def test_colleagues_see_it_with_safe_headers(client_of: Any, world: SimpleNamespace) -> None:
    upload(client_of("member"), picture("PNG"))
    url = picture_url(client_of("member"))
    assert url is not None
    for key in ("member", "viewer", "junior_rep", "owner", "dual"):
        response = client_of(key).get(url)
        assert response.status_code == 200, key
        assert response.mimetype == "image/webp"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.data == stored()[0].data
    # The ETag (the digest) answers a revalidation with 304.
    etag = response.headers["ETag"]
    assert etag.strip('"') == stored()[0].digest
    assert client_of("viewer").get(url, headers={"If-None-Match": etag}).status_code == 304


def test_nobody_outside_the_workspace_sees_it(client_of: Any, world: SimpleNamespace,
                                              app: Flask) -> None:
    upload(client_of("member"), picture("PNG"))
    mine = f"/settings/members/{world.members['member'].id}/picture"
    without = f"/settings/members/{world.members['member2'].id}/picture"
    missing = "/settings/members/999999/picture"
    outsider = client_of("outsider", world.ws2)
    # Another workspace's member, a member with no picture and no member at all: one 404.
    answers = [outsider.get(mine), client_of("member").get(without),
               client_of("member").get(missing)]
    assert [r.status_code for r in answers] == [404, 404, 404]
    # The outsider's answer for a real member of Acme is their answer for no member at all.
    assert same_page(outsider.get(missing).text, answers[0].text)
    # dual shares Acme but is looking at Beta: the Acme membership is not Beta's.
    assert client_of("dual", world.ws2).get(mine).status_code == 404
    # Anonymous: sent to sign in.
    anonymous = app.test_client().get(mine)
    assert anonymous.status_code in (302, 401)
    assert b"RIFF" not in anonymous.data


def test_a_deactivated_member_shows_initials(client_of: Any, world: SimpleNamespace) -> None:
    upload(client_of("member"), picture("PNG"))
    url = picture_url(client_of("member"))
    assert url is not None
    owner = client_of("owner")
    assert owner.post(f"/settings/members/{world.members['member'].id}/deactivate",
                      data={"reason": "left"}).status_code in (302, 303)
    assert owner.get(url).status_code == 404
    assert picture_url(owner, f"/settings/members/{world.members['member'].id}") is None


def test_pages_and_the_api_show_the_picture(app: Flask, client_of: Any,
                                            world: SimpleNamespace) -> None:
    upload(client_of("member"), picture("PNG"))
    url = picture_url(client_of("member"))
    owner = client_of("owner")
    members = owner.get("/settings/members").text
    assert url in members and members.count('class="rbac-avatar rbac-avatar--sm') == \
        members.count("<th scope=\"row\"><span class=\"rbac-person\">")
    member_page = owner.get(f"/settings/members/{world.members['member'].id}").text
    assert f'src="{url}" alt="Profile picture of Member"' in member_page
    # The demo's top bar shows the signed-in member's own picture.
    dashboard = client_of("member").get("/").text
    assert f'class="avatar avatar-md avatar-picture" src="{url}"' in dashboard
    assert 'avatar-picture' not in client_of("owner").get("/").text
    # The JSON API: a URL or null, and the URL answers the API token too.
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "pictures")
    db.session.commit()
    api = Api(app, plaintext)
    listed = api.get("/members").get_json()["members"]
    by_id = {m["id"]: m["picture_url"] for m in listed}
    api_url = by_id[world.members["member"].id]
    assert api_url == url.replace("/settings/", "/api/v1/")
    assert by_id[world.members["owner"].id] is None
    access = api.get(f"/members/{world.members['member'].id}/access").get_json()
    assert access["member"]["picture_url"] == api_url
    served = api.client.get(api_url, headers=api.headers)
    assert served.mimetype == "image/webp" and served.headers["X-Content-Type-Options"] == "nosniff"
    # A token never opens the pages' route, and the API's answers other ids as missing.
    assert api.client.get(url, headers=api.headers).status_code in (302, 401)
    missing = api.get(f"/members/{world.members['member2'].id}/picture")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


# -- view-as and the audit trail ---------------------------------------------------------------

def test_viewing_as_a_member_cannot_change_their_picture(client_of: Any,
                                                         world: SimpleNamespace) -> None:
    upload(client_of("member"), picture("PNG"))
    before = stored()[0].digest
    owner = client_of("owner")
    started = owner.post("/settings/view-as",
                         data={"membership_id": str(world.members["member"].id)})
    assert started.status_code == 302
    assert upload(owner, picture("GIF")).status_code == 403
    assert owner.post("/settings/profile/picture/delete").status_code == 403
    [row] = stored()
    assert row.digest == before and row.user_id == world.users["member"].id
    assert len(events("profile_picture.set")) == 1 and events("profile_picture.removed") == []


def test_setting_and_removing_are_audited_in_words(client_of: Any,
                                                   world: SimpleNamespace) -> None:
    client = client_of("member")
    upload(client, picture("PNG"))
    client.post("/settings/profile/picture/delete")
    [set_event], [removed] = events("profile_picture.set"), events("profile_picture.removed")
    for event in (set_event, removed):
        assert event.workspace_id == world.ws.id
        assert event.actor_user_id == world.users["member"].id
    assert set_event.detail["content_type"] == "image/webp"
    headlines = client_of("owner").get("/settings/audit").text
    assert "Member set a new profile picture" in headlines
    assert "Member removed their profile picture" in headlines


def test_the_service_refuses_without_writing(app: Flask, world: SimpleNamespace) -> None:
    """Called from Python (a job, the CLI), the service checks the same things."""
    from crm_rbac_plugin.images import PictureRejected

    with app.test_request_context(), rbac.system():
        with pytest.raises(PictureRejected) as refused:
            team.set_picture(rbac, world.members["member"], io.BytesIO(b"GIF89a junk"))
        assert refused.value.field == "picture" and refused.value.status == 400
        db.session.rollback()
    assert stored() == []
