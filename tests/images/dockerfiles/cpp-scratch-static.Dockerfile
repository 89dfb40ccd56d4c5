FROM registry.local:5000/build/gcc@sha256:4444444444444444444444444444444444444444444444444444444444444444 AS build
WORKDIR /src
COPY . .
RUN g++ -static -O2 -o /server main.cpp

FROM scratch
COPY --from=build /server /server
ENTRYPOINT ["/server"]
