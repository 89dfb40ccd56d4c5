"""Job error messages in the reader's language.

A worker has no reader, so a handler's `JobFailure` message (and the error it copies to an
image request or a plan item) is stored in English, which the API serves as written, like a
job's step (`portal.job_steps`). Each handler writes its message as a template with named
values (`images.texts._`, which `makemessages` collects); the same templates are listed here,
and the pages render a stored error that one of them produces from its translated template,
with the values read back out of the English text. Any other error (a tool's own words) is
shown as it is. `tests/portal/test_job_errors.py` checks that every template a handler raises
is listed here.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext_noop as _

from .stored_texts import StoredTexts

# fmt: off
ERROR_TEMPLATES: Sequence[str] = (  # English msgids, translated on display
    # images
    _("The advisory import this job was started for does not exist."),
    _("%(registry)s is unavailable: %(error)s"),
    _("Registry %(registry)s: set both PORTAL_REGISTRY_%(env)s_USERNAME and _PASSWORD, or "
      "neither."),
    _("No image version to scan (%(error)s)."),
    _("ABI facts of %(reference)s: %(error)s"),
    _("%(what)s: the registry stayed unavailable after %(attempts)s attempts: %(error)s"),
    _("Image request #%(request)s does not exist."),
    _("Catalog image #%(image)s does not exist."),
    _("No registry is configured to push to; add one (Registry, is_default)."),
    _("Unknown recipe kind %(kind)s."),
    _("The recipe is invalid: %(error)s"),
    _("The Dockerfile builds FROM no catalog image (scratch only)."),
    _("Line %(line)s: %(image)s is not an approved (or candidate) image version in the "
      "portal's registry: %(reasons)s"),
    _("no approved or candidate version"),
    _("Line %(line)s: %(error)s"),
    _("No tag to build."),
    _("%(name)s:%(tag)s already has version %(digest)s (%(state)s); versions are immutable: "
      "request a new tag."),
    _("%(name)s is not in the catalog."),
    _("Nothing to build: %(error)s"),
    _("The build was cancelled."),
    _("Registry error: %(error)s"),
    # images: advisory import sources (an import job's error; the form's field errors)
    _('The path is empty or contains a NUL byte.'),
    _('No advisory import roots are configured (PORTAL_ADVISORY_IMPORT_ROOTS).'),
    _('The path must be absolute: %(path)s.'),
    _('The path %(path)s is outside the allowed import roots (%(roots)s).'),
    _('The path %(path)s does not exist.'),
    _('The path %(path)s is neither a file nor a directory.'),
    _('The directory holds %(count)s JSON files; the limit is %(limit)s.'),
    _("The directory's files hold %(size)s bytes; the limit is %(limit)s."),
    _('The file is %(size)s bytes; the limit is %(limit)s bytes.'),
    _('%(origin)s holds %(count)s records; the limit is %(limit)s.'),
    _('The file is not a readable zip archive: %(error)s.'),
    _('The archive has %(count)s entries; the limit is %(limit)s.'),
    _('The archive declares %(size)s bytes uncompressed; the limit is %(limit)s bytes (a zip '
      'bomb?).'),
    _('The archive declares entries over %(limit)s bytes uncompressed (%(entries)s; a zip '
      'bomb?).'),
    _('The archive inflates past %(limit)s bytes (a zip bomb?).'),
    _('The URL %(url)s is not an http(s) URL.'),
    _("The URL %(url)s is not allowed (credentials or '..')."),
    _('The URL %(url)s is not under an allowed advisory mirror (PORTAL_ADVISORY_MIRRORS: '
      '%(mirrors)s).'),
    _('none configured'),
    _('Fetching %(url)s failed: %(error)s'),
    _('Fetching %(url)s answered HTTP %(status)s.'),
    _('%(url)s is %(size)s bytes; the limit is %(limit)s bytes.'),
    _('%(url)s is larger than the limit of %(limit)s bytes.'),
    _('The uploaded file is gone (was the job run twice?).'),
    # images: the builder's refusals (a build's error)
    _("The builder refuses this Dockerfile, it reaches outside its build: %(escapes)s"),
    _("The builder refuses the bootstrap mirror %(mirror)s: it is not on the allow-list "
      "(PORTAL_BOOTSTRAP_MIRRORS: %(allowed)s). Remove the mirror from the recipe, or ask the "
      "platform team to allow it."),
    _("none: only this machine's apt sources"),
    # deployments
    _("%(what)s is missing from storage (%(name)s)."),
    _("%(what)s in storage has sha256 %(actual)s, not the recorded %(sha256)s: storage is "
      "corrupt."),
    _("The build command succeeded but left no /out/%(path)s: write the output there (e.g. "
      "gcc -o /out/%(path)s …)."),
    _("/out/%(path)s: %(link)s is a symbolic link; the output must be a regular file. Nothing "
      "was registered."),
    _("/out/%(path)s is not a regular file. Nothing was registered."),
    _("/out/%(path)s is larger than the binary limit of %(limit)s bytes."),
    _("The source archive is refused: %(error)s. Nothing was kept."),
    _("The build command failed (exit code %(code)s); nothing was registered. Its output ends "
      "with:\n%(tail)s"),
    _("The output cannot be registered as %(service)s %(version)s: %(error)s"),
    _("No source build to run (%(build)s)."),
    _("No registry is configured to push app images to (Registry, is_default)."),
    _("%(what)s: the image config lists no layers (rootfs.diff_ids)."),
    _("The pushed image %(image)s does not sit on %(runtime)s: its first %(count)s layers are "
      "not the runtime's."),
    _("The pushed image's %(label)s is %(value)s, not %(digest)s."),
    _("%(deployment)s has no binary version to build an app image of."),
    _("%(binary)s is purged: its file is gone."),
    _("The image-mode Dockerfile cannot be rendered: %(error)s"),
    _("Nothing to build: deployment #%(deployment)s or runtime version #%(runtime)s does not "
      "exist."),
    _("No registry of the catalog serves %(host)s; add it under Registries to read the app "
      "image's base."),
    _("Reading the base of %(image)s: %(error)s"),
    _("The file of %(binary)s is missing from storage (%(file)s)."),
    _("The stored file of %(binary)s is shorter than its recorded %(size)s bytes: %(error)s"),
    _("The stored file of %(binary)s is longer than %(size)s bytes."),
    _("The stored file of %(binary)s has sha256 %(actual)s, not the recorded %(sha256)s: "
      "storage is corrupt; nothing was pushed."),
    _("No registry is configured to push binaries to; add one in the catalog (Registry, "
      "is_default)."),
    _("%(binary)s is %(state)s; only active versions can be pushed as an OCI artifact."),
    _("Binary version #%(binary)s does not exist."),
    _("No binary version to scan (%(error)s)."),
    _("The stored file of %(binary)s does not match its sha256."),
    _("%(images)s was not published within %(minutes)s minutes; see its build job, then run "
      "`manage.py start_demo_deployments` again."),
    # deployments: plans (an item's or a plan's own error, shown where job errors are)
    _("Re-targeted to plan #%(plan)s (version %(version)s)."),
    _("The verdict is unknown; a migration releases only compatible binaries."),
    _("Already released on the target (another plan or by hand)."),
    _("Already released on the target."),
    _("Item %(item)s: %(error)s"),
    _("The app-image build of item %(item)s failed: %(error)s"),
    _("Release %(release)s was reported failed: %(note)s"),
    _("The plan was aborted."),
    _("%(count)s item(s) of wave %(wave)s failed."),
    _("The scan failed."),  # a version's scan_error when the job said nothing
    # portal
    _("HTTP %(status)s"),
    _("Internal error: %(kind)s: %(error)s"),
    _("The database was lost while the job ran: %(error)s"),
    _("The worker %(worker)s stopped answering (no heartbeat since %(since)sZ) and all "
      "%(attempts)s attempts are spent."),
    _("Timed out after %(seconds)s s."),
)
# fmt: on


_ERRORS = StoredTexts(ERROR_TEMPLATES, depth=1)


def job_error_display(error: str) -> str:
    """The error in the active language (the error itself when no template produces it). A
    value that is itself a listed message (e.g. the reasons of a refused base) is translated
    too."""
    return _ERRORS.display(error)
