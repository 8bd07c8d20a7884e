{{/* Names, labels and the checks shared by the templates. */}}

{{- define "stytch-sso-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every resource it creates. */}}
{{- define "stytch-sso-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stytch-sso-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stytch-sso-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "stytch-sso-operator.labels" -}}
{{ include "stytch-sso-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "stytch-sso-operator.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stytch-sso-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stytch-sso-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: set it to an existing ServiceAccount in the release namespace." .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stytch-sso-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "stytch-sso-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "stytch-sso-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{/* NAMESPACE/NAME of the project credentials Secret; fails with the fix when unset. */}}
{{- define "stytch-sso-operator.credentialsSecret" -}}
{{- if not .Values.credentials.existingSecret }}
{{- fail (printf "credentials.existingSecret is not set: create a Secret with the keys project_id and secret in namespace %s, then pass its name, e.g. --set credentials.existingSecret=stytch-credentials" .Release.Namespace) }}
{{- end }}
{{- printf "%s/%s" .Release.Namespace .Values.credentials.existingSecret }}
{{- end }}

{{- define "stytch-sso-operator.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* Checks of values that the schema cannot express; included by the Deployment. */}}
{{- define "stytch-sso-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas is above 1 while leaderElection.enabled is false: the replicas would reconcile the same objects at once. Set leaderElection.enabled=true or replicas=1." }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable are both set: set one of them and the other to null." }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget.enabled is true but neither podDisruptionBudget.minAvailable nor podDisruptionBudget.maxUnavailable is set: set one of them." }}
{{- end }}
{{- if ne (len .Values.watchNamespaces) (len (uniq .Values.watchNamespaces)) }}
{{- fail (printf "watchNamespaces lists a namespace twice (%s): list each namespace once." (join ", " .Values.watchNamespaces)) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs on the objects it watches, wherever it watches them: a
ClusterRole's when it watches every namespace, a Role's in each namespace of watchNamespaces.
*/}}
{{- define "stytch-sso-operator.watchRules" -}}
# The objects themselves; patch adds and removes the cleanup finalizer.
- apiGroups: ["sso.stytch-operator.dev"]
  resources: ["oidcconnections"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["sso.stytch-operator.dev"]
  resources: ["oidcconnections/status"]
  verbs: ["get", "patch"]
# Clusters enforcing OwnerReferencesPermissionEnforcement require it to set blockOwnerDeletion.
- apiGroups: ["sso.stytch-operator.dev"]
  resources: ["oidcconnections/finalizers"]
  verbs: ["update"]
# Read-only: client secrets are read with get; changes are watched to trigger reconciles.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Create only: the operator writes each Event once and never updates one.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
