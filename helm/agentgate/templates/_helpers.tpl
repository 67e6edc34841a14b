{{/*
Names, labels, and the gateway config the chart renders. Paths inside the pod:
  /etc/agentgate/config.yaml              the gateway config (ConfigMap)
  /etc/agentgate/keys/jwks.json           the signing keys (Secret)
  /etc/agentgate/secrets/cookies/KEY      cookie keys (Secret)
  /etc/agentgate/secrets/redis/FILE       password, sentinel-password, url (Secret)
  /etc/agentgate/secrets/NAME/KEY         secretMounts (Secrets)
*/}}

{{- define "agentgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agentgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agentgate.labels" -}}
helm.sh/chart: {{ include "agentgate.chart" . }}
{{ include "agentgate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "agentgate.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "agentgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agentgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "agentgate.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "agentgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "agentgate.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* The chart's own Secret, holding inline values only. */}}
{{- define "agentgate.inlineSecretName" -}}
{{- include "agentgate.fullname" . -}}
{{- end -}}

{{/* The issuer, checked: required, https in production, no trailing slash. */}}
{{- define "agentgate.issuer" -}}
{{- $issuer := required "config.issuer is required: the public https URL of the gateway (the OAuth issuer), e.g. --set config.issuer=https://sso.example.com" .Values.config.issuer -}}
{{- if not (regexMatch `^https?://[^/?#]+(/[^?#]*)?$` $issuer) -}}
{{- fail (printf "config.issuer %q must be an absolute http(s) URL without query or fragment" $issuer) -}}
{{- end -}}
{{- if hasSuffix "/" $issuer -}}
{{- fail (printf "config.issuer %q must not end with \"/\"" $issuer) -}}
{{- end -}}
{{- if and (ne (include "agentgate.mode" .) "development") (not (hasPrefix "https://" $issuer)) -}}
{{- fail (printf "config.issuer %q must be https in production mode (the gateway refuses an http issuer)" $issuer) -}}
{{- end -}}
{{- $issuer -}}
{{- end -}}

{{- define "agentgate.mode" -}}
{{- default "production" .Values.config.mode -}}
{{- end -}}

{{/* The issuer's path ("" or "/sso"): where discovery lives. */}}
{{- define "agentgate.issuerPath" -}}
{{- (urlParse (include "agentgate.issuer" .)).path | trimSuffix "/" -}}
{{- end -}}

{{- define "agentgate.issuerHost" -}}
{{- (urlParse (include "agentgate.issuer" .)).hostname -}}
{{- end -}}

{{/* "10s" / "500ms" / "5m" / "1h" / "1d" -> whole seconds, rounded up. */}}
{{- define "agentgate.durationSeconds" -}}
{{- $d := trim (toString .) -}}
{{- $n := regexFind `^[0-9]+(\.[0-9]+)?` $d -}}
{{- $unit := trimPrefix $n $d -}}
{{- $factor := get (dict "ms" "0.001" "s" "1" "m" "60" "h" "3600" "d" "86400") $unit -}}
{{- if or (not $n) (not $factor) -}}
{{- fail (printf "%q is not a duration (use e.g. 500ms, 90s, 5m, 8h)" $d) -}}
{{- end -}}
{{- mulf (float64 $n) (float64 $factor) | ceil | int -}}
{{- end -}}

{{/*
Secret fields of the gateway config must be references, never values: the ConfigMap is not a
secret store. Walks .value; fails on a secret-named field whose value is not ${file:...} or
${env:...}.
*/}}
{{- define "agentgate.checkSecretRefs" -}}
{{- $path := .path -}}
{{- if kindIs "map" .value -}}
{{- range $key, $value := .value -}}
{{- $at := printf "%s.%s" $path $key -}}
{{- if and (has $key (list "clientSecret" "secret" "password" "sentinelPassword" "signingKey" "decryptionKey" "serviceAccountKey" "privateKey")) (kindIs "string" $value) -}}
{{- if not (regexMatch `^\s*\$\{(file|env):[^}]+\}\s*$` $value) -}}
{{- fail (printf "%s: put the secret in a Secret and reference it: \"${file:/etc/agentgate/secrets/NAME/KEY}\" (secretMounts) or \"${env:NAME}\" (env); the gateway config is a ConfigMap, never a place for secret values" $at) -}}
{{- end -}}
{{- end -}}
{{- include "agentgate.checkSecretRefs" (dict "path" $at "value" $value) -}}
{{- end -}}
{{- else if kindIs "slice" .value -}}
{{- range $i, $item := .value -}}
{{- include "agentgate.checkSecretRefs" (dict "path" (printf "%s[%d]" $path $i) "value" $item) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Redis credentials: is there a password (file /etc/agentgate/secrets/redis/password)? */}}
{{- define "agentgate.redis.hasPassword" -}}
{{- $auth := .Values.redis.auth -}}
{{- if or (and $auth.existingSecret $auth.passwordKey) (and (not $auth.existingSecret) $auth.password) -}}true{{- end -}}
{{- end -}}

{{- define "agentgate.redis.hasSentinelPassword" -}}
{{- $auth := .Values.redis.auth -}}
{{- if eq .Values.redis.mode "sentinel" -}}
{{- if or (and $auth.existingSecret $auth.sentinelPasswordKey) (and (not $auth.existingSecret) $auth.sentinelPassword) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agentgate.redis.usesUrlKey" -}}
{{- if and (eq .Values.redis.mode "standalone") .Values.redis.auth.existingSecret .Values.redis.auth.urlKey -}}true{{- end -}}
{{- end -}}

{{/* The Secret volume items for /etc/agentgate/secrets/redis/ ([] when Redis has no credentials). */}}
{{- define "agentgate.redis.secretItems" -}}
{{- $auth := .Values.redis.auth -}}
{{- $items := list -}}
{{- if $auth.existingSecret -}}
{{- if include "agentgate.redis.usesUrlKey" . -}}
{{- $items = append $items (dict "key" $auth.urlKey "path" "url") -}}
{{- else if $auth.passwordKey -}}
{{- $items = append $items (dict "key" $auth.passwordKey "path" "password") -}}
{{- end -}}
{{- if include "agentgate.redis.hasSentinelPassword" . -}}
{{- $items = append $items (dict "key" $auth.sentinelPasswordKey "path" "sentinel-password") -}}
{{- end -}}
{{- else -}}
{{- if $auth.password -}}
{{- $items = append $items (dict "key" "redis-password" "path" "password") -}}
{{- end -}}
{{- if include "agentgate.redis.hasSentinelPassword" . -}}
{{- $items = append $items (dict "key" "redis-sentinel-password" "path" "sentinel-password") -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{/* Host/port pairs as the gateway wants them (ports as integers). */}}
{{- define "agentgate.redis.nodes" -}}
{{- $nodes := list -}}
{{- range $i, $node := .nodes -}}
{{- $host := required (printf "%s[%d].host is required" $.at $i) $node.host -}}
{{- $nodes = append $nodes (dict "host" $host "port" (int (default $.defaultPort $node.port))) -}}
{{- end -}}
{{- toYaml (dict "nodes" $nodes) -}}
{{- end -}}

{{/* The gateway's `store` (README "Store"), from .Values.redis. */}}
{{- define "agentgate.store" -}}
{{- $r := .Values.redis -}}
{{- $auth := $r.auth -}}
{{- if and $auth.existingSecret (or $auth.password $auth.sentinelPassword) -}}
{{- fail "redis.auth: set existingSecret or the inline password/sentinelPassword, not both" -}}
{{- end -}}
{{- if and $auth.urlKey (not $auth.existingSecret) -}}
{{- fail "redis.auth.urlKey names a key of redis.auth.existingSecret: set existingSecret too" -}}
{{- end -}}
{{- $password := "" -}}
{{- if include "agentgate.redis.hasPassword" . -}}
{{- $password = "${file:/etc/agentgate/secrets/redis/password}" -}}
{{- end -}}
{{- $store := dict "driver" "redis" "keyPrefix" $r.keyPrefix "connectTimeout" $r.connectTimeout "commandTimeout" $r.commandTimeout -}}
{{- if eq $r.mode "standalone" -}}
{{- if include "agentgate.redis.usesUrlKey" . -}}
{{- $_ := set $store "url" "${file:/etc/agentgate/secrets/redis/url}" -}}
{{- else -}}
{{- $userinfo := "" -}}
{{- if $password -}}
{{- $userinfo = printf "%s:%s@" $r.username $password -}}
{{- else if $r.username -}}
{{- $userinfo = printf "%s@" $r.username -}}
{{- end -}}
{{- if $r.url -}}
{{- if not (regexMatch `^rediss?://` $r.url) -}}
{{- fail (printf "redis.url %q must start with redis:// or rediss://" $r.url) -}}
{{- end -}}
{{- if regexMatch `^rediss?://[^/?#]*@` $r.url -}}
{{- fail "redis.url must not carry credentials (it is written into the ConfigMap): put the password in redis.auth.existingSecret (passwordKey), or the whole URL in it (urlKey)" -}}
{{- end -}}
{{- $u := urlParse $r.url -}}
{{- $url := printf "%s://%s%s%s" $u.scheme $userinfo $u.host $u.path -}}
{{- if $u.query -}}{{- $url = printf "%s?%s" $url $u.query -}}{{- end -}}
{{- $_ := set $store "url" $url -}}
{{- else -}}
{{- $host := required "redis.host (or redis.url) is required: the gateway keeps sessions, tokens and revocations in Redis (external; e.g. --set redis.host=redis-master.redis.svc)" $r.host -}}
{{- $_ := set $store "url" (printf "%s://%s%s:%d/%d" (ternary "rediss" "redis" $r.tls) $userinfo $host (int $r.port) (int $r.db)) -}}
{{- end -}}
{{- end -}}
{{- else if eq $r.mode "sentinel" -}}
{{- if not $r.sentinel.nodes -}}
{{- fail "redis.sentinel.nodes is required in sentinel mode: [{ host: ..., port: 26379 }, ...]" -}}
{{- end -}}
{{- $nodes := (include "agentgate.redis.nodes" (dict "nodes" $r.sentinel.nodes "defaultPort" 26379 "at" "redis.sentinel.nodes") | fromYaml).nodes -}}
{{- $sentinel := dict "name" (required "redis.sentinel.masterName is required" $r.sentinel.masterName) "sentinels" $nodes "db" (int $r.db) "tls" $r.tls -}}
{{- if $password -}}{{- $_ := set $sentinel "password" $password -}}{{- end -}}
{{- if $r.username -}}{{- $_ := set $sentinel "username" $r.username -}}{{- end -}}
{{- if include "agentgate.redis.hasSentinelPassword" . -}}
{{- $_ := set $sentinel "sentinelPassword" "${file:/etc/agentgate/secrets/redis/sentinel-password}" -}}
{{- end -}}
{{- $_ := set $store "sentinel" $sentinel -}}
{{- else if eq $r.mode "cluster" -}}
{{- if not $r.cluster.nodes -}}
{{- fail "redis.cluster.nodes is required in cluster mode: [{ host: ..., port: 6379 }, ...]" -}}
{{- end -}}
{{- $nodes := (include "agentgate.redis.nodes" (dict "nodes" $r.cluster.nodes "defaultPort" 6379 "at" "redis.cluster.nodes") | fromYaml).nodes -}}
{{- $cluster := dict "nodes" $nodes "tls" $r.tls -}}
{{- if $password -}}{{- $_ := set $cluster "password" $password -}}{{- end -}}
{{- if $r.username -}}{{- $_ := set $cluster "username" $r.username -}}{{- end -}}
{{- $_ := set $store "cluster" $cluster -}}
{{- else -}}
{{- fail (printf "redis.mode %q: use standalone, sentinel or cluster" $r.mode) -}}
{{- end -}}
{{- toYaml $store -}}
{{- end -}}

{{/* Cookie key files: [{ key, path }] mounted under /etc/agentgate/secrets/cookies/. */}}
{{- define "agentgate.cookieKeys.items" -}}
{{- $c := .Values.cookieKeys -}}
{{- $items := list -}}
{{- if and $c.existingSecret $c.values -}}
{{- fail "cookieKeys: set existingSecret or inline values, not both" -}}
{{- end -}}
{{- if $c.existingSecret -}}
{{- if not $c.keys -}}
{{- fail "cookieKeys.keys: list the keys of cookieKeys.existingSecret that hold cookie keys, newest first" -}}
{{- end -}}
{{- range $c.keys -}}
{{- $items = append $items (dict "key" . "path" .) -}}
{{- end -}}
{{- else if $c.values -}}
{{- range $i, $value := $c.values -}}
{{- if lt (len $value) 32 -}}
{{- fail (printf "cookieKeys.values[%d] must be at least 32 characters (openssl rand -base64 32)" $i) -}}
{{- end -}}
{{- $items = append $items (dict "key" (printf "cookie-key-%d" $i) "path" (printf "cookie-key-%d" $i)) -}}
{{- end -}}
{{- else -}}
{{- fail "cookieKeys is required in production: a Secret with one or more random keys of 32+ characters, e.g.\n  kubectl create secret generic agentgate-cookies --from-literal=cookie-key=\"$(openssl rand -base64 32)\"\nthen --set cookieKeys.existingSecret=agentgate-cookies" -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{- define "agentgate.signingKeys.check" -}}
{{- $k := .Values.signingKeys -}}
{{- if and $k.existingSecret $k.jwks -}}
{{- fail "signingKeys: set existingSecret or inline jwks, not both" -}}
{{- end -}}
{{- if not (or $k.existingSecret $k.jwks) -}}
{{- fail "signingKeys is required in production: a Secret holding the private JWK Set the gateway signs with, e.g.\n  npx agentgate keys generate --out jwks.json && kubectl create secret generic agentgate-keys --from-file=jwks.json\nthen --set signingKeys.existingSecret=agentgate-keys" -}}
{{- end -}}
{{- end -}}

{{- define "agentgate.secretMounts.check" -}}
{{- $seen := dict -}}
{{- range $i, $m := .Values.secretMounts -}}
{{- if has $m.name (list "cookies" "redis") -}}
{{- fail (printf "secretMounts[%d].name %q is used by the chart (cookieKeys, redis.auth); pick another name" $i $m.name) -}}
{{- end -}}
{{- if hasKey $seen $m.name -}}
{{- fail (printf "secretMounts[%d].name %q is used twice" $i $m.name) -}}
{{- end -}}
{{- $_ := set $seen $m.name true -}}
{{- if eq (len (compact (list $m.existingSecret (ternary "inline" "" (not (empty $m.stringData)))))) 1 | not -}}
{{- fail (printf "secretMounts[%d] (%s): set exactly one of existingSecret or stringData" $i $m.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The complete gateway config (YAML), as it goes into the ConfigMap. */}}
{{- define "agentgate.config" -}}
{{- $issuer := include "agentgate.issuer" . -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- range $key := list "listen" "store" "keys" "cookies" -}}
{{- if hasKey $cfg $key -}}
{{- fail (printf "config.%s is written by the chart (listen: containerPort; store: redis.*; keys: signingKeys.*; cookies: cookieKeys.*): remove it from config" $key) -}}
{{- end -}}
{{- end -}}
{{- include "agentgate.signingKeys.check" . -}}
{{- include "agentgate.secretMounts.check" . -}}
{{- $_ := set $cfg "mode" (include "agentgate.mode" .) -}}
{{- $_ := set $cfg "issuer" $issuer -}}
{{- $_ := set $cfg "listen" (dict "host" "0.0.0.0" "port" (int .Values.containerPort)) -}}
{{- $_ := set $cfg "store" (include "agentgate.store" . | fromYaml) -}}
{{- $_ := set $cfg "keys" (dict "file" "/etc/agentgate/keys/jwks.json") -}}
{{- $cookies := list -}}
{{- range (include "agentgate.cookieKeys.items" . | fromYaml).items -}}
{{- $cookies = append $cookies (printf "${file:/etc/agentgate/secrets/cookies/%s}" .path) -}}
{{- end -}}
{{- $_ := set $cfg "cookies" (dict "keys" $cookies) -}}
{{- include "agentgate.checkSecretRefs" (dict "path" "config" "value" $cfg) -}}
{{- $shutdown := include "agentgate.durationSeconds" (dig "shutdown" "timeout" "10s" $cfg) | int -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $sleep := int .Values.preStopSleepSeconds -}}
{{- if le $grace (add $sleep $shutdown) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + config.shutdown.timeout (%ds), or Kubernetes kills the gateway before in-flight requests finish" $grace $sleep $shutdown) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
