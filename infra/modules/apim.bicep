// API Management (Consumption tier) in front of the Function App. The API itself is imported
// from the app's OpenAPI document, so it exists only once the code is deployed: the first
// infrastructure run leaves importOpenApi=false, a second run after the code deploy sets it
// to true (or import with the CLI, see README).
//
// The OpenAPI paths already carry the /api/v1 prefix (FastAPI serves /api/v1/...), so the
// backend is the app's root URL and clients call <gateway>/<apiPath>/api/v1/...

param location string
param tags object
param name string
param publisherEmail string
param publisherName string
param functionAppId string
param functionAppHostName string

@description('https://<app>.azurewebsites.net/api/v1/openapi.json')
param openApiUrl string

param importOpenApi bool

@description('Origin of the dashboard (https://<static web app host>), admitted by the CORS policy.')
param dashboardOrigin string

@secure()
@description('Sent to the Function App in X-Gateway-Secret with every request (SH_GATEWAY_SECRET there).')
param gatewaySecret string

@description('URL suffix of the API on the gateway.')
param apiPath string = 'shadow-hubble'

var backendId = 'shadow-hubble-functions'

resource service 'Microsoft.ApiManagement/service@2023-05-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Consumption'
    capacity: 0
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

resource backend 'Microsoft.ApiManagement/service/backends@2023-05-01-preview' = {
  parent: service
  name: backendId
  properties: {
    description: 'Shadow Hubble Function App'
    protocol: 'http'
    url: 'https://${functionAppHostName}'
    resourceId: uri(environment().resourceManager, functionAppId)
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
}

// The policy adds it to every forwarded request as {{gateway-secret}}.
resource gatewaySecretValue 'Microsoft.ApiManagement/service/namedValues@2023-05-01-preview' = {
  parent: service
  name: 'gateway-secret'
  properties: {
    displayName: 'gateway-secret'
    secret: true
    value: gatewaySecret
  }
}

resource api 'Microsoft.ApiManagement/service/apis@2023-05-01-preview' = if (importOpenApi) {
  parent: service
  name: 'shadow-hubble-v1'
  properties: {
    displayName: 'Shadow Hubble API v1'
    description: 'Fraud-detection MLOps API, imported from the Function App\'s OpenAPI document.'
    path: apiPath
    protocols: [
      'https'
    ]
    apiType: 'http'
    subscriptionRequired: true
    format: 'openapi+json-link'
    value: openApiUrl
    serviceUrl: 'https://${functionAppHostName}'
  }
}

// Route every operation to the backend entity with the gateway's secret, and answer the
// dashboard's CORS preflights.
resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2023-05-01-preview' = if (importOpenApi) {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: replace(replace(loadTextContent('apim-policy.xml'), '__DASHBOARD_ORIGIN__', dashboardOrigin), '__BACKEND_ID__', backendId)
  }
  dependsOn: [
    backend
    gatewaySecretValue
  ]
}

output name string = service.name
output gatewayUrl string = service.properties.gatewayUrl
output apiPath string = apiPath
output backendId string = backendId
