"""What every rule page is made of: `RuleDoc`, and the passages of the standard it quotes."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise

HADOLINT_WIKI = "https://github.com/hadolint/hadolint/wiki/"
SHELLCHECK_WIKI = "https://www.shellcheck.net/wiki/"

# Passages of the standard («容器 基础镜像 Base Image 规范»), quoted as written.
STANDARD_TITLE = "容器 基础镜像 Base Image 规范"
QUOTES: dict[str, str] = {
    "origin": (
        "应用Application打包到镜像Image中形成业务镜像Application Image,往往需要一个基础镜像"
        "Base Image作为我们应用服务的外部环境. 那么问题来了,基础镜像从何而来?"
    ),
    # Why base images come from the company's own registry rather than straight from upstream.
    "pull": (
        "官方推荐: 直接从官网仓库pull一个,但由于官网被墙的比较厉害,所以这里介绍一些官方提供"
        "以及个人方法。"
    ),
    "classes": (
        "基础镜像(base image)规范两大类: 1. build base image: 将代码 通过外挂Volume 挂载到 "
        "基础镜像(build base image)进行编译 2. runtime base image:将编译产物 外挂Volume 放入 "
        "基础镜像(runtime base image) 或者 基于标准容器(runtime base image)构建业务容器"
    ),
    "replace": (
        "基础镜像可随时替换,不需要重新制作新镜像(比如:image中出现安全问题、更换国产化OS等)"
    ),
    "uniform": (
        "业务部署方式统一, 机器上的镜像数量少,占用空间少,不会因为image的大小导致磁盘不可用"
    ),
    "alpine": "alpine 避免长期使用,本身基础镜像有安全漏洞,减少维护成本,限制业务使用",
    "scratch": "scratch 是空镜像,特殊的一种说明,推进不使用(除非是基础C语言软件)",
    "build": "业务可以通过的Dockerfile 使用此镜像进行代码镜像内编译",
    "runtime": "统一的runtime base image 需要对基础的os添加必要的lib包.",
    # The runtime base image of the standard's section 3.2 (its ENV instruction, as written).
    "env": "ENV \\ TZ=Asia/Shanghai \\ LANG=en_US.utf8 \\ LC_ALL=en_US.utf8",
}

# The image the examples build on.
REF = "registry.example.com/runtime/debian-12"
DIGEST = "sha256:4f2c…e81a"


@dataclass(frozen=True)
class RuleDoc:
    """The reference page of one rule.

    `severity` is the rule's fixed severity for rules outside the Dockerfile policy (the
    image-request BUILD rules); "" means the policy's (`PORTAL_POLICY_FILE` may change it).
    """

    rule: str
    title: Promise
    what: Promise
    why: Promise
    quote: str
    fix: Promise
    bad: str
    good: str
    severity: str = ""

    @property
    def quote_text(self) -> str:
        """The quoted passage of the standard (Chinese, as written)."""
        return QUOTES[self.quote]


def doc(rule: str, title: Promise, what: Promise, why: Promise, quote: str, fix: Promise,
        bad: str, good: str, *, severity: str = "") -> RuleDoc:  # fmt: skip
    """A `RuleDoc`, its examples stripped."""
    return RuleDoc(rule, title, what, why, quote, fix, bad.strip(), good.strip(), severity)
