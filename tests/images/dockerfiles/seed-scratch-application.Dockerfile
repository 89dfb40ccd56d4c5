FROM scratch  # 基础镜像
ADD application /
CMD ["/application", "-m", "release"]
