# escape=`
FROM registry.local:5000/runtime/debian@sha256:3333333333333333333333333333333333333333333333333333333333333333
RUN echo one && `
    echo two
CMD ["/bin/true"]
