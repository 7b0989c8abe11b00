// Shadow Hubble on Azure: one resource group holds the whole platform.
//
//   az deployment group create -g <rg> -f infra/main.bicep \
//     -p infra/main.parameters.<env>.json -p postgresAdminObjectId=... postgresAdminPrincipalName=...
//
// See infra/README.md for the full deploy sequence (infra, code package, migrations, APIM import).
//
// Hosting plan: Elastic Premium (EP1-EP3), not Flex Consumption. Both plans give VNet
// integration (the app reaches PostgreSQL only through its delegated subnet), Durable
// Functions on the Azure Storage provider and managed identity. Elastic Premium wins here:
//   - Flex Consumption rejects the FUNCTIONS_WORKER_RUNTIME app setting (the runtime moves to
//     functionAppConfig.runtime); this platform's contract lists FUNCTIONS_WORKER_RUNTIME=python.
//   - Training (xgboost, lightgbm, SHAP on a whole dataset) needs memory: EP3 has 14 GB per
//     instance, Flex stops at 4 GB.
//   - /predict sits in the checkout path: always-ready plus pre-warmed EP instances mean no cold
//     start, and host.json's functionTimeout of 2 h is allowed (EP has no hard execution cap).
// The price of EP is that it does not scale to zero. Its usual Azure Files content share would
// need a storage key, so the app runs without one: the code package is a blob read with the
// app's managed identity (WEBSITE_RUN_FROM_PACKAGE = blob URL), and the storage account allows
// no shared-key access at all.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@description('Azure region for every resource except the Static Web App.')
param location string = resourceGroup().location

@description('Environment name, part of every resource name.')
@allowed([
  'dev'
  'prod'
])
param environmentName string

@description('Short lowercase prefix of resource names.')
@minLength(3)
@maxLength(12)
param namePrefix string = 'shadowhubble'

@description('Tags added to every resource.')
param tags object = {}

// Function App ----------------------------------------------------------------------------------

@description('Elastic Premium size: EP1 (1 core, 3.5 GB), EP2 (2 cores, 7 GB), EP3 (4 cores, 14 GB).')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param functionPlanSku string

@description('Instances kept running at all times (no cold start for /predict).')
@minValue(1)
@maxValue(20)
param functionAlwaysReadyInstances int

@description('Upper bound of the scale-out.')
@minValue(1)
@maxValue(100)
param functionMaximumInstances int

@description('Blob name of the code package in the deployments container (see README).')
param packageBlobName string = 'shadow-hubble.zip'

@description('SH_LOG_LEVEL of the app.')
@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

@description('Largest dataset upload in MiB (SH_MAX_UPLOAD_MB and the host body limit). The Functions host buffers an HTTP body in memory and the front end ends a request after 230 s, so keep this far below the local default of 2048.')
@minValue(1)
@maxValue(1024)
param maxUploadMb int = 100

// Storage ---------------------------------------------------------------------------------------

@description('Replication of the storage account (host, Durable task hub, datasets, models).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string

// PostgreSQL ------------------------------------------------------------------------------------

@description('PostgreSQL major version.')
@allowed([
  '15'
  '16'
])
param postgresVersion string = '16'

@description('Compute size, e.g. Standard_B1ms (Burstable) or Standard_D2ds_v5 (GeneralPurpose).')
param postgresSkuName string

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string

@minValue(32)
param postgresStorageSizeGB int

@description('High availability; Burstable servers support only Disabled.')
@allowed([
  'Disabled'
  'SameZone'
  'ZoneRedundant'
])
param postgresHighAvailability string = 'Disabled'

@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

@allowed([
  'Disabled'
  'Enabled'
])
param postgresGeoRedundantBackup string = 'Disabled'

@description('Object id of the Entra user or group that administers PostgreSQL and runs the migrations.')
param postgresAdminObjectId string

@description('Display name (user principal name or group name) of that Entra principal.')
param postgresAdminPrincipalName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresAdminPrincipalType string = 'Group'

// Deployment principal --------------------------------------------------------------------------

@description('Object id of whoever uploads code packages (a person or a CI service principal); empty: grant nothing.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// Messaging, monitoring, edge -------------------------------------------------------------------

@description('Service Bus tier; Standard has topics, which the alert fan-out needs.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Publisher e-mail of the API Management instance (required by Azure).')
param apimPublisherEmail string

param apimPublisherName string = 'Shadow Hubble'

@description('Import the API from the running app\'s OpenAPI document. Leave false until the code is deployed: the import fetches /api/v1/openapi.json from the Function App.')
param importOpenApi bool = false

@secure()
@description('Shared secret API Management adds to every request it forwards (X-Gateway-Secret); the app refuses requests without it (functions/api/gateway.py). By default a new one each deployment, which sets it on both sides.')
param gatewaySecret string = newGuid()

@allowed([
  'Free'
  'Standard'
])
param staticWebAppSku string = 'Free'

@description('Static Web Apps exist in a few regions only.')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param staticWebAppLocation string = 'westeurope'

@description('Address space of the VNet; the subnets are carved from it.')
param vnetAddressPrefix string = '10.40.0.0/16'

// ---------------------------------------------------------------------------------------------
// Names. Application-level names match the code: shared.jobs.launcher.JOBS_QUEUE and the
// default of shared.config.Settings.storage_container (tests/test_infra.py checks both).
// ---------------------------------------------------------------------------------------------

var suffix = take(uniqueString(resourceGroup().id, environmentName), 6)
var baseName = '${namePrefix}-${environmentName}-${suffix}'

var jobsQueueName = 'shadow-hubble-jobs'
var alertsTopicName = 'alerts'
// one subscription per consumer function in functions/bus/alerts.py
var alertSubscriptionNames = [
  'webhooks'
  'audit'
  'retrain'
]
var dataContainerName = 'shadow-hubble'
var deploymentContainerName = 'deployments'
var databaseName = 'shadowhubble'

var allTags = union(tags, {
  application: 'shadow-hubble'
  environment: environmentName
})

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    tags: allTags
    vnetName: 'vnet-${baseName}'
    addressPrefix: vnetAddressPrefix
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    workspaceName: 'log-${baseName}'
    appInsightsName: 'appi-${baseName}'
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: allTags
    accountName: take(toLower('st${replace(namePrefix, '-', '')}${environmentName}${suffix}'), 24)
    skuName: storageSkuName
    dataContainerName: dataContainerName
    deploymentContainerName: deploymentContainerName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: allTags
    namespaceName: 'sb-${baseName}'
    skuName: serviceBusSku
    jobsQueueName: jobsQueueName
    alertsTopicName: alertsTopicName
    alertSubscriptionNames: alertSubscriptionNames
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    location: location
    tags: allTags
    serverName: 'psql-${baseName}'
    version: postgresVersion
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    highAvailabilityMode: postgresHighAvailability
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    delegatedSubnetId: network.outputs.postgresSubnetId
    vnetId: network.outputs.vnetId
    databaseName: databaseName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: allTags
    appName: 'func-${baseName}'
    planName: 'plan-${baseName}'
    planSku: functionPlanSku
    alwaysReadyInstances: functionAlwaysReadyInstances
    maximumInstances: functionMaximumInstances
    integrationSubnetId: network.outputs.functionSubnetId
    storageAccountName: storage.outputs.accountName
    packageUrl: '${storage.outputs.blobEndpoint}${deploymentContainerName}/${packageBlobName}'
    dataContainerName: dataContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    serviceBusFqdn: serviceBus.outputs.fullyQualifiedNamespace
    jobsQueueName: jobsQueueName
    postgresFqdn: postgres.outputs.fqdn
    databaseName: databaseName
    logLevel: logLevel
    maxUploadMb: maxUploadMb
    gatewaySecret: gatewaySecret
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.accountName
    dataContainerName: dataContainerName
    deploymentContainerName: deploymentContainerName
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module postgresAdmins 'modules/postgres-admins.bicep' = {
  name: 'postgres-admins'
  params: {
    serverName: postgres.outputs.serverName
    adminObjectId: postgresAdminObjectId
    adminPrincipalName: postgresAdminPrincipalName
    adminPrincipalType: postgresAdminPrincipalType
    appPrincipalId: functionApp.outputs.principalId
    appPrincipalName: functionApp.outputs.name
  }
}

module staticWebApp 'modules/staticwebapp.bicep' = {
  name: 'staticwebapp'
  params: {
    location: staticWebAppLocation
    tags: allTags
    name: 'stapp-${baseName}'
    skuName: staticWebAppSku
  }
}

module apim 'modules/apim.bicep' = {
  name: 'apim'
  params: {
    location: location
    tags: allTags
    name: 'apim-${baseName}'
    publisherEmail: apimPublisherEmail
    publisherName: apimPublisherName
    functionAppId: functionApp.outputs.id
    functionAppHostName: functionApp.outputs.defaultHostName
    openApiUrl: 'https://${functionApp.outputs.defaultHostName}/api/v1/openapi.json'
    importOpenApi: importOpenApi
    dashboardOrigin: 'https://${staticWebApp.outputs.defaultHostname}'
    gatewaySecret: gatewaySecret
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (the README's deploy steps read them with `az deployment group show`)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output functionAppPrincipalId string = functionApp.outputs.principalId
output storageAccountName string = storage.outputs.accountName
output deploymentContainerName string = deploymentContainerName
output packageBlobName string = packageBlobName
output postgresServerName string = postgres.outputs.serverName
output postgresFqdn string = postgres.outputs.fqdn
output databaseName string = databaseName
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output deploySubnetId string = network.outputs.deploySubnetId
output apimName string = apim.outputs.name
output apimGatewayUrl string = apim.outputs.gatewayUrl
output apiBaseUrl string = '${apim.outputs.gatewayUrl}/${apim.outputs.apiPath}/api/v1'
output staticWebAppName string = staticWebApp.outputs.name
output dashboardUrl string = 'https://${staticWebApp.outputs.defaultHostname}'
