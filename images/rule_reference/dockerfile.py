"""The reference pages of the Dockerfile check's rules (BIP…), `images.policy`'s own."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .base import DIGEST, REF, RuleDoc, doc

_GOOD = f'FROM {REF}@{DIGEST}\nCOPY app /app\nCMD ["/app"]'
_GOOD_MULTI = (
    "FROM registry.example.com/build/golang-1.22@sha256:9b1d…07c2 AS builder\n"
    "RUN go build -o /out/app ./cmd/app\n"
    f"FROM {REF}@{DIGEST}\n"
    "COPY --from=builder /out/app /app"
)

RULES: tuple[RuleDoc, ...] = (
    doc(
        "BIP001",
        _("No FROM instruction"),
        _("The Dockerfile has no FROM instruction, so it names no base image at all."),
        _(
            "Every application image stands on a base image; the portal can only check the one a "
            "Dockerfile names."
        ),
        "origin",
        _("Start the Dockerfile (after any ARG) with FROM and an approved catalog image."),
        'COPY app /app\nCMD ["/app"]',
        _GOOD,
    ),
    doc(
        "BIP002",
        _("Base image is not an approved catalog image"),
        _(
            "The FROM image is not an image of the portal catalog; the message names the closest "
            "approved one."
        ),
        _(
            "The standard defines two kinds of base image, build and runtime, maintained by the "
            "platform team; an image from elsewhere is maintained by nobody here."
        ),
        "classes",
        _(
            "Replace the image with the approved catalog image the message suggests, pinned by "
            "digest."
        ),
        "FROM docker.io/library/debian:12",
        _GOOD,
    ),
    doc(
        "BIP003",
        _("Base image is not from an approved registry"),
        _(
            "The image name matches a catalog image, but it is pulled from a registry the portal "
            "does not manage."
        ),
        _(
            "A copy in another registry may differ from the build the platform team approved and "
            "cannot be replaced or revoked by it."
        ),
        "replace",
        _("Pull the image from the catalog's registry (the message gives the full reference)."),
        "FROM mirror.example.org/runtime/debian-12:12",
        _GOOD,
    ),
    doc(
        "BIP004",
        _("Restricted base image (alpine)"),
        _(
            "The image is restricted (alpine and other images the platform team restricted); it "
            "is allowed only with an active exception for the service."
        ),
        _(
            "The standard restricts alpine: it is not to be used long term, it carries security "
            "issues and costs maintenance."
        ),
        "alpine",
        _(
            "Move to a runtime base image of the catalog, or ask the platform team for a "
            "time-limited exception for this service."
        ),
        "FROM registry.example.com/runtime/alpine:3.19",
        _GOOD,
    ),
    doc(
        "BIP005",
        _("scratch is not recommended"),
        _("The final stage is built FROM scratch, an empty image."),
        _(
            "The standard does not recommend scratch except for basic C software: an empty image "
            "has no CA certificates, time zone data or libraries."
        ),
        "scratch",
        _("Build FROM a runtime base image; keep scratch for static C/C++ binaries."),
        "FROM scratch\nCOPY app /app",
        _GOOD,
    ),
    doc(
        "BIP006",
        _("Base image is past its end of life"),
        _("The base image's operating system is past its end of life."),
        _(
            "Base images must be replaceable at any time, for instance when a security problem "
            "appears; an EOL system gets no more fixes."
        ),
        "replace",
        _("Move to the replacement the catalog names for this image."),
        "FROM registry.example.com/runtime/centos-7@sha256:…",
        _GOOD,
    ),
    doc(
        "BIP007",
        _("Base image is deprecated"),
        _("The platform team has deprecated the image; it still works but will be retired."),
        _("Base images are replaced over time; deprecation is the notice to plan the move."),
        "replace",
        _("Plan the move to the replacement the catalog names."),
        "FROM registry.example.com/runtime/debian-11@sha256:…",
        _GOOD,
    ),
    doc(
        "BIP008",
        _("Base image is blocked"),
        _("The platform team has blocked the image; builds on it are refused."),
        _(
            "A blocked image has a problem (often a security one) that must not reach production; "
            "the standard expects base images to be replaced when that happens."
        ),
        "replace",
        _("Use the replacement the catalog names."),
        "FROM registry.example.com/runtime/blocked-image@sha256:…",
        _GOOD,
    ),
    doc(
        "BIP009",
        _("Base image uses latest or no tag"),
        _("The FROM reference has no tag or the tag latest."),
        _(
            "latest changes under you: two builds of the same Dockerfile get different base "
            "images, and nobody can say which one is deployed."
        ),
        "replace",
        _("Reference the base image by digest: registry/name@sha256:…"),
        f"FROM {REF}:latest",
        _GOOD,
    ),
    doc(
        "BIP010",
        _("Base image is not pinned by digest"),
        _("The FROM reference uses a tag, not a digest."),
        _(
            "Tags move; only a digest names exactly the build the platform team approved and lets "
            "the portal tell you when it is superseded."
        ),
        "replace",
        _("Pin the approved digest the message gives."),
        f"FROM {REF}:12",
        _GOOD,
    ),
    doc(
        "BIP011",
        _("Final stage is not a runtime base image"),
        _("The stage that becomes the shipped image is built FROM a build (toolchain) image."),
        _(
            "The standard separates build base images (for compiling) from runtime base images "
            "(for running); a toolchain in production is larger and has more to attack."
        ),
        "classes",
        _("Compile in a builder stage and copy the result into a runtime base image."),
        "FROM registry.example.com/build/golang-1.22@sha256:…\nRUN go build -o /app .",
        _GOOD_MULTI,
    ),
    doc(
        "BIP012",
        _("Builder stage is not a build base image"),
        _(
            "A stage that compiles (its output is copied into a later stage) is not built FROM a "
            "build base image."
        ),
        _(
            "The standard provides build base images so that services compile inside them with "
            "the approved toolchain."
        ),
        "build",
        _(
            "Build FROM the build base image of your language and copy the result to the "
            "runtime stage."
        ),
        "FROM docker.io/library/golang:1.22 AS builder\nRUN go build -o /out/app .",
        _GOOD_MULTI,
    ),
    doc(
        "BIP013",
        _("Runtime base recipe does not set TZ, LANG and LC_ALL"),
        _("A runtime base image recipe does not set the time zone and locale environment."),
        _(
            "The standard's runtime base image sets them so every service logs in the same time "
            "zone and encoding."
        ),
        "env",
        _("Add the ENV line of the standard to the recipe."),
        "FROM debian:12\nRUN apt-get update",
        "FROM debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8",
    ),
    doc(
        "BIP014",
        _("Piping a download into a shell"),
        _("A RUN step downloads a script and pipes it straight into a shell."),
        _(
            "What runs is whatever the server sent at build time, unverified; the standard's base "
            "images install from the OS packages."
        ),
        "runtime",
        _("Download to a file, verify its checksum, then run it."),
        "RUN curl -fsSL https://example.com/install.sh | sh",
        "RUN curl -fsSLo install.sh https://example.com/install.sh \\\n"
        ' && echo "<sha256>  install.sh" | sha256sum -c - && sh install.sh',
    ),
    doc(
        "BIP015",
        _("Base image version is not approved"),
        _("The digest is a version of the catalog image that is revoked or still a candidate."),
        _(
            "Only approved versions are maintained; a revoked one was withdrawn for a reason, "
            "often a security one."
        ),
        "replace",
        _("Use the current approved digest the message gives."),
        f"FROM {REF}@sha256:<revoked digest>",
        _GOOD,
    ),
    doc(
        "BIP016",
        _("Base image version is superseded"),
        _("A newer approved version of the same catalog image exists."),
        _(
            "Base images are replaced to bring fixes; staying on a superseded version keeps the "
            "problems the new one fixed."
        ),
        "replace",
        _("Move to the digest of the current approved version."),
        f"FROM {REF}@sha256:<older digest>",
        _GOOD,
    ),
    doc(
        "BIP017",
        _("Base image digest is unknown to the catalog"),
        _("The digest is not a build of this catalog image."),
        _("The portal can only vouch for builds it made; an unknown digest may be anything."),
        "origin",
        _("Use the approved digest from the image's catalog page."),
        f"FROM {REF}@sha256:<unknown digest>",
        _GOOD,
    ),
    doc(
        "BIP020",
        _("Unknown instruction or invalid syntax"),
        _("A line is not a Dockerfile instruction, or its syntax is invalid."),
        _("A Dockerfile the portal cannot read cannot be checked against the standard."),
        "origin",
        _("Use the instructions of the Dockerfile reference (FROM, RUN, COPY, ENV, …)."),
        "FORM debian:12",
        _GOOD,
    ),
    doc(
        "BIP021",
        _("Unterminated continuation or heredoc"),
        _(
            "The last instruction continues past the end of the file (a trailing backslash or an "
            "unclosed heredoc)."
        ),
        _("A Dockerfile the portal cannot read cannot be checked against the standard."),
        "origin",
        _("Remove the trailing backslash or close the heredoc."),
        "RUN apt-get update && \\",
        "RUN apt-get update",
    ),
    doc(
        "BIP022",
        _("Too many stages"),
        _("The Dockerfile has more than 50 stages; it is not checked."),
        _("The check has limits so that one request cannot tie up the portal."),
        "origin",
        _("Split the Dockerfile."),
        "# 51 × FROM …",
        _GOOD_MULTI,
    ),
    doc(
        "BIP023",
        _("Malformed FROM or image reference"),
        _("The FROM line or its image reference cannot be parsed."),
        _("The portal must identify the base image to check it."),
        "origin",
        _("Write FROM image[:tag|@sha256:digest] [AS name]."),
        "FROM registry.example.com/runtime/debian-12@sha256:xyz",
        _GOOD,
    ),
    doc(
        "BIP024",
        _("FROM uses an undefined ARG"),
        _("FROM uses a build argument that has no default before the first FROM."),
        _("The base image must be known when the Dockerfile is checked, not only at build time."),
        "origin",
        _("Give every ARG used in FROM a default before the first FROM."),
        "ARG BASE\nFROM $BASE",
        f"ARG BASE={REF}@{DIGEST}\nFROM $BASE",
    ),
    doc(
        "BIP025",
        _("Reference to an unknown stage"),
        _("COPY --from names a stage that does not exist."),
        _("Every image a build copies from must be known so that it can be checked."),
        "origin",
        _("Name or number an earlier stage."),
        "COPY --from=biulder /out/app /app",
        "COPY --from=builder /out/app /app",
    ),
    doc(
        "BIP026",
        _("Instruction before the first FROM"),
        _("An instruction other than ARG comes before the first FROM."),
        _("A Dockerfile the portal cannot read cannot be checked against the standard."),
        "origin",
        _("Move the instruction after FROM; only ARG may come first."),
        f"ENV A=1\nFROM {REF}@{DIGEST}",
        f"FROM {REF}@{DIGEST}\nENV A=1",
    ),
    doc(
        "BIP027",
        _("Duplicate stage name"),
        _("Two stages have the same name (FROM … AS name)."),
        _("Stage names must say unambiguously what a COPY --from copies."),
        "origin",
        _("Give every stage a unique name."),
        "FROM a AS build\nFROM b AS build",
        "FROM a AS build\nFROM b AS test",
    ),
    doc(
        "BIP030",
        _("Dockerfile linter unavailable"),
        _("hadolint could not run, so only the portal's own rules were checked."),
        _("The verdict is still the portal's; hadolint's best-practice checks are missing."),
        "origin",
        _("Nothing to change in the Dockerfile; the platform team restores hadolint."),
        "",
        "",
    ),
    doc(
        "BIP031",
        _("Portal policy file invalid; default policy applied"),
        _(
            "The platform team's policy file could not be loaded, so the default rule severities "
            "and ignores were applied."
        ),
        _("A broken policy file must not silently switch the checks off."),
        "origin",
        _("The platform team fixes PORTAL_POLICY_FILE."),
        "",
        "",
    ),
    doc(
        "BIP040",
        _("RUN --mount in a recipe"),
        _("A recipe of an image request uses RUN --mount (cache, bind, secret, ssh, tmpfs)."),
        _(
            "Mounts reach outside the build (buildah's cache mounts can reach the build host); a "
            "base image must be reproducible from its recipe alone."
        ),
        "runtime",
        _("Do the work inside the RUN step instead."),
        "RUN --mount=type=cache,target=/var/cache/apt apt-get install -y curl",
        "RUN apt-get update && apt-get install -y --no-install-recommends curl",
    ),
    doc(
        "BIP041",
        _("RUN --network or --security in a recipe"),
        _("A recipe step sets its own network or security mode."),
        _("Recipe builds run in the platform's network and security sandbox."),
        "runtime",
        _("Remove the flag."),
        "RUN --network=host apt-get update",
        "RUN apt-get update",
    ),
    doc(
        "BIP042",
        _("ADD or COPY of a URL or git repository in a recipe"),
        _("A recipe downloads files with ADD or COPY from a URL or a git repository."),
        _("The standard's base images add the libraries they need from the OS packages."),
        "runtime",
        _("Install software from the OS packages in a RUN step."),
        "ADD https://example.com/tool.tar.gz /opt/",
        "RUN apt-get update && apt-get install -y --no-install-recommends tool",
    ),
    doc(
        "BIP043",
        _("COPY --from an image that is not an earlier stage or an approved catalog image"),
        _(
            "COPY --from names an image that is neither an earlier stage nor an approved catalog "
            "image."
        ),
        _(
            "Whatever is copied into a base image becomes part of it; it must come from a "
            "reviewed source."
        ),
        "classes",
        _("Copy from an earlier stage, or from an approved catalog image pinned by digest."),
        "COPY --from=docker.io/library/busybox /bin/sh /bin/sh",
        "COPY --from=builder /out/tool /usr/local/bin/tool",
    ),
    doc(
        "BIP044",
        _("ONBUILD in a recipe"),
        _("A recipe uses ONBUILD."),
        _("ONBUILD runs unreviewed instructions in every later build on this base image."),
        "runtime",
        _("Remove the ONBUILD instruction."),
        "ONBUILD COPY . /app",
        "",
    ),
)
