FROM openeuler:22.03
ENV TZ=Asia/Shanghai LANG=en_US.utf8
RUN dnf install -y tzdata && dnf clean all
