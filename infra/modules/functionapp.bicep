// The Function App: Linux, Python 3.11, Elastic Premium plan (why not Flex Consumption: see the
// header of main.bicep), system-assigned managed identity, outbound traffic through the VNet.
//
// No Azure Files content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING / WEBSITE_CONTENTSHARE
// are deliberately absent): Azure Files needs a storage key. The app runs from a zip package in
// Blob Storage that the platform fetches with the app's own identity.

param location string
param tags object
param appName string
param planName string
param planSku string
param alwaysReadyInstances int
param maximumInstances int
param integrationSubnetId string
param storageAccountName string

@description('Blob URL of the code package (WEBSITE_RUN_FROM_PACKAGE).')
param packageUrl string

param dataContainerName string
param appInsightsConnectionString string

@description('<namespace>.servicebus.windows.net')
param serviceBusFqdn string

param jobsQueueName string
param postgresFqdn string
param databaseName string
param logLevel string
param maxUploadMb int

@secure()
@description('SH_GATEWAY_SECRET: API Management sends it with every request; requests without it are refused.')
param gatewaySecret string

var workerProcesses = {
  EP1: 1
  EP2: 2
  EP3: 4
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
    capacity: alwaysReadyInstances
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: maximumInstances
  }
}

// The database role of a system-assigned identity is the app's name (postgres-admins.bicep);
// the password is an Entra access token the app asks for at connect time.
var databaseUrl = 'postgresql+psycopg://${appName}@${postgresFqdn}:5432/${databaseName}?sslmode=require'

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientAffinityEnabled: false
    virtualNetworkSubnetId: integrationSubnetId
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      vnetRouteAllEnabled: true
      minimumElasticInstanceCount: alwaysReadyInstances
      functionAppScaleLimit: maximumInstances
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
      use32BitWorkerProcess: false
      appSettings: [
        // Functions host
        {
          name: 'FUNCTIONS_EXTENSION_VERSION'
          value: '~4'
        }
        {
          name: 'FUNCTIONS_WORKER_RUNTIME'
          value: 'python'
        }
        {
          name: 'AzureWebJobsFeatureFlags'
          value: 'EnableWorkerIndexing'
        }
        {
          // Identity-based host storage (blobs, queues, tables; the Durable task hub too)
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'WEBSITE_RUN_FROM_PACKAGE'
          value: packageUrl
        }
        {
          name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
          value: 'SystemAssigned'
        }
        {
          // Scoring holds the GIL: one Python worker process per core of the EP size
          // (EP1 1, EP2 2, EP3 4); each has its own model sessions and state cache.
          name: 'FUNCTIONS_WORKER_PROCESS_COUNT'
          value: string(workerProcesses[planSku])
        }
        {
          name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'
          value: string((maxUploadMb + 1) * 1048576)
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          // Identity-based connection of the Service Bus trigger (connection="ServiceBusConnection")
          name: 'ServiceBusConnection__fullyQualifiedNamespace'
          value: serviceBusFqdn
        }
        // Shadow Hubble (shared/config.py)
        {
          name: 'SH_BACKEND'
          value: 'azure'
        }
        {
          name: 'SH_DATABASE_URL'
          value: databaseUrl
        }
        {
          // only API Management sends it: the app refuses requests without it
          name: 'SH_GATEWAY_SECRET'
          value: gatewaySecret
        }
        {
          // the managed identity's Entra token is the PostgreSQL password
          name: 'SH_DATABASE_ENTRA_AUTH'
          value: 'true'
        }
        {
          name: 'SH_STORAGE_ACCOUNT_URL'
          value: 'https://${storageAccountName}.blob.${environment().suffixes.storage}'
        }
        {
          name: 'SH_STORAGE_CONTAINER'
          value: dataContainerName
        }
        {
          name: 'SH_SERVICEBUS_NAMESPACE'
          value: serviceBusFqdn
        }
        {
          name: 'SH_JOBS_QUEUE'
          value: jobsQueueName
        }
        {
          // Migrations run once per release as a deploy step, never at every cold start
          name: 'SH_RUN_MIGRATIONS'
          value: 'false'
        }
        {
          name: 'SH_LOG_JSON'
          value: 'true'
        }
        {
          name: 'SH_LOG_LEVEL'
          value: logLevel
        }
        {
          name: 'SH_MAX_UPLOAD_MB'
          value: string(maxUploadMb)
        }
      ]
    }
  }
}

// No FTP or Kudu basic-auth publishing: code arrives as a blob, people sign in with Entra ID.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
