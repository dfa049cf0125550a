{{/*
Names, labels, the image, pod security and the Redis/PostgreSQL connection environment.
Cross-field rules the JSON schema cannot say clearly are checked in "conveyor.validate" and
fail rendering with a message that names the values to set.
*/}}

{{- define "conveyor.name" -}}conveyor{{- end -}}

{{/* <release>-conveyor, or the release name alone when it already says "conveyor". */}}
{{- define "conveyor.fullname" -}}
{{- if contains "conveyor" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-conveyor" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "conveyor.labels" -}}
app.kubernetes.io/name: conveyor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: conveyor
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "operator"). */}}
{{- define "conveyor.selectorLabels" -}}
app.kubernetes.io/name: conveyor
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "conveyor.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "conveyor.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- .Values.operator.serviceAccount.name | default (printf "%s-operator" (include "conveyor.fullname" .)) -}}
{{- else -}}
{{- .Values.operator.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "conveyor.workerServiceAccount" -}}
{{- if .Values.worker.serviceAccount.create -}}
{{- .Values.worker.serviceAccount.name | default (printf "%s-worker" (include "conveyor.fullname" .)) -}}
{{- else -}}
{{- .Values.worker.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Namespaces where WorkerPools may run Deployments: the release namespace first. */}}
{{- define "conveyor.workerNamespaces" -}}
{{- $all := list .Release.Namespace -}}
{{- range .Values.operator.extraWorkerNamespaces -}}{{- $all = append $all . -}}{{- end -}}
{{- $all | uniq | toJson -}}
{{- end -}}

{{/* The Secret of the in-chart evaluation databases. */}}
{{- define "conveyor.evaluationSecret" -}}{{ include "conveyor.fullname" . }}-evaluation{{- end -}}

{{/*
Where the Redis and PostgreSQL URLs come from, as JSON:
{"redis": {"secret": name, "key": key} or {"host": true}, "postgresql": {...}}.
*/}}
{{- define "conveyor.sources" -}}
{{- $r := .Values.redis -}}
{{- $p := .Values.postgresql -}}
{{- $out := dict -}}
{{- if .Values.evaluation.redis.enabled -}}
{{- $_ := set $out "redis" (dict "secret" (include "conveyor.evaluationSecret" .) "key" "redis-url") -}}
{{- else if and $r.existingSecret $r.urlKey -}}
{{- $_ := set $out "redis" (dict "secret" $r.existingSecret "key" $r.urlKey) -}}
{{- else -}}
{{- $_ := set $out "redis" (dict "host" true) -}}
{{- end -}}
{{- if .Values.evaluation.postgresql.enabled -}}
{{- $_ := set $out "postgresql" (dict "secret" (include "conveyor.evaluationSecret" .) "key" "database-url") -}}
{{- else if and $p.existingSecret $p.urlKey -}}
{{- $_ := set $out "postgresql" (dict "secret" $p.existingSecret "key" $p.urlKey) -}}
{{- else -}}
{{- $_ := set $out "postgresql" (dict "host" true) -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/*
The one Secret (keys redis-url and database-url) the operator hands to every worker pod
(CONVEYOR_WORKER_CONNECTION_SECRET), or "" when the URLs are not in one such Secret: then the
default pool carries the connection variables itself and other pools must too.
*/}}
{{- define "conveyor.workerConnectionSecret" -}}
{{- $s := include "conveyor.sources" . | fromJson -}}
{{- if and $s.redis.secret $s.postgresql.secret -}}
{{- if and (eq $s.redis.secret $s.postgresql.secret) (eq $s.redis.key "redis-url") (eq $s.postgresql.key "database-url") -}}
{{- $s.redis.secret -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "conveyor.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef: {name: {{ .secret | quote }}, key: {{ .key | quote }}}
{{- end -}}

{{/*
Environment for Redis and PostgreSQL (operator and default pool). Host mode composes the URL
with Kubernetes' $(VAR) expansion, so passwords never appear in a manifest; PostgreSQL's user
and password go in PGUSER/PGPASSWORD, which asyncpg reads when the URL has none (and which
need no URL escaping).
*/}}
{{- define "conveyor.connectionEnv" -}}
{{- $s := include "conveyor.sources" . | fromJson -}}
{{- $r := .Values.redis -}}
{{- $p := .Values.postgresql -}}
{{- if $s.redis.secret -}}
{{ include "conveyor.secretEnv" (dict "name" "CONVEYOR_REDIS_URL" "secret" $s.redis.secret "key" $s.redis.key) }}
{{- else }}
{{- $auth := "" }}
{{- if $r.passwordSecret }}
{{ include "conveyor.secretEnv" (dict "name" "CONVEYOR_REDIS_PASSWORD" "secret" $r.passwordSecret "key" $r.passwordKey) }}
{{- $auth = printf "%s:$(CONVEYOR_REDIS_PASSWORD)@" $r.username }}
{{- else if $r.username }}
{{- $auth = printf "%s@" $r.username }}
{{- end }}
- name: CONVEYOR_REDIS_URL
  value: {{ printf "%s://%s%s:%v/%v" (ternary "rediss" "redis" $r.tls.enabled) $auth $r.host $r.port $r.database | quote }}
{{- end }}
{{- if $s.postgresql.secret }}
{{ include "conveyor.secretEnv" (dict "name" "CONVEYOR_DATABASE_URL" "secret" $s.postgresql.secret "key" $s.postgresql.key) }}
{{- else }}
{{- if $p.usernameSecret }}
{{ include "conveyor.secretEnv" (dict "name" "PGUSER" "secret" $p.usernameSecret "key" $p.usernameKey) }}
{{- else }}
- name: PGUSER
  value: {{ $p.username | quote }}
{{- end }}
{{- if $p.passwordSecret }}
{{ include "conveyor.secretEnv" (dict "name" "PGPASSWORD" "secret" $p.passwordSecret "key" $p.passwordKey) }}
{{- end }}
- name: CONVEYOR_DATABASE_URL
  value: {{ printf "postgresql://%s:%v/%s?sslmode=%s" $p.host $p.port $p.database $p.sslMode | quote }}
{{- end }}
{{- include "conveyor.caEnv" . }}
{{- end -}}

{{/* CA certificates (PEM) to verify the servers' TLS certificates with, from Secrets. */}}
{{- define "conveyor.caEnv" -}}
{{- $r := .Values.redis -}}
{{- $p := .Values.postgresql -}}
{{- if and $r.tls.caSecret (not .Values.evaluation.redis.enabled) }}
{{ include "conveyor.secretEnv" (dict "name" "CONVEYOR_REDIS_CA_CERT" "secret" $r.tls.caSecret "key" $r.tls.caKey) }}
{{- end }}
{{- if and $p.tls.caSecret (not .Values.evaluation.postgresql.enabled) }}
{{ include "conveyor.secretEnv" (dict "name" "CONVEYOR_DATABASE_CA_CERT" "secret" $p.tls.caSecret "key" $p.tls.caKey) }}
{{- end }}
{{- end -}}

{{/* Pod-level security: the "restricted" Pod Security Standard. */}}
{{- define "conveyor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "conveyor.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Rules across values that a schema would only report as an unreadable anyOf. */}}
{{- define "conveyor.validate" -}}
{{- $s := include "conveyor.sources" . | fromJson -}}
{{- if and $s.redis.host (not .Values.redis.host) -}}
{{- fail "\nconveyor: no Redis configured. Set redis.existingSecret (a Secret whose key redis.urlKey holds the URL), or redis.host (+ redis.passwordSecret), or evaluation.redis.enabled=true for a throwaway in-chart Redis." -}}
{{- end -}}
{{- if and $s.postgresql.host (not .Values.postgresql.host) -}}
{{- fail "\nconveyor: no PostgreSQL configured. Set postgresql.existingSecret (a Secret whose key postgresql.urlKey holds the URL), or postgresql.host (+ postgresql.passwordSecret), or evaluation.postgresql.enabled=true for a throwaway in-chart PostgreSQL." -}}
{{- end -}}
{{- if and .Values.defaultPool.enabled (gt (int .Values.defaultPool.minReplicas) (int .Values.defaultPool.maxReplicas)) -}}
{{- fail (printf "\nconveyor: defaultPool.minReplicas (%v) must not exceed defaultPool.maxReplicas (%v)." .Values.defaultPool.minReplicas .Values.defaultPool.maxReplicas) -}}
{{- end -}}
{{- range .Values.operator.extraEnv -}}
{{- if and (eq .name "CONVEYOR_LEADER_ELECTION") (gt (int $.Values.operator.replicas) 1) (has (lower (toString .value)) (list "false" "0" "no" "off" "f" "n")) -}}
{{- fail (printf "\nconveyor: operator.replicas=%v needs leader election, but operator.extraEnv sets CONVEYOR_LEADER_ELECTION=%v: every replica would reconcile. Remove it, or set operator.replicas=1." $.Values.operator.replicas .value) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.operator.watchNamespace (has .Values.operator.watchNamespace (list "kube-system" "kube-public")) -}}
{{- fail (printf "\nconveyor: operator.watchNamespace=%s is a system namespace; pick the namespace your Workflows live in." .Values.operator.watchNamespace) -}}
{{- end -}}
{{- end -}}

{{/* Rules on Workflows, Executions and their Events (a ClusterRole's or a Role's). */}}
{{- define "conveyor.namespacedOperatorRules" -}}
- apiGroups: [conveyor.dev]
  resources: [workflows]
  verbs: [get, list, watch, patch]
- apiGroups: [conveyor.dev]
  resources: [executions]
  # get and delete: ttlSecondsAfterFinished and Schedules' history limits (the operator
  # deletes finished Executions); create: Schedules' runs.
  verbs: [get, list, watch, patch, delete, create]
- apiGroups: [conveyor.dev]
  resources: [schedules]
  verbs: [list, watch, patch]
- apiGroups: [conveyor.dev]
  resources: [workflows/status, executions/status, schedules/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# get: a Namespace's conveyor.dev/ttl-seconds-after-finished annotation (a default TTL). In a
# Role this allows reading only the Role's own Namespace object.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- end -}}

{{/* Metadata of a hook object: (dict "root" $ "hook" "pre-upgrade" "weight" "-10"). */}}
{{- define "conveyor.hookMeta" -}}
labels:
  {{- include "conveyor.labels" .root | nindent 2 }}
  app.kubernetes.io/component: hook
annotations:
  helm.sh/hook: {{ .hook }}
  helm.sh/hook-weight: {{ .weight | quote }}
  helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}

{{/* A hook Job running conveyor-operator: (dict "root" $ "hook" h "name" n "args" list). */}}
{{- define "conveyor.hookJob" -}}
{{- $root := .root -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  {{- include "conveyor.hookMeta" (dict "root" $root "hook" .hook "weight" "0") | nindent 2 }}
spec:
  backoffLimit: 3
  activeDeadlineSeconds: 300
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels:
        {{- include "conveyor.selectorLabels" (dict "root" $root "component" "hook") | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ .name }}
      automountServiceAccountToken: true
      securityContext:
        {{- include "conveyor.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .hook }}
          image: {{ include "conveyor.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [conveyor-operator, {{ join ", " .args }}]
          env:
            {{- with $root.Values.operator.watchNamespace }}
            - name: CONVEYOR_NAMESPACE
              value: {{ . | quote }}
            {{- end }}
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef: {fieldPath: metadata.namespace}
          resources:
            {{- toYaml $root.Values.hooks.resources | nindent 12 }}
          securityContext:
            {{- include "conveyor.containerSecurityContext" $root | nindent 12 }}
      {{- with $root.Values.operator.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.operator.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
