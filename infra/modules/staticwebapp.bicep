// Static Web App for the React dashboard. No repository link: the built dashboard is uploaded
// with the SWA CLI and the app's deployment token (README). It calls the API through API
// Management, whose CORS policy admits this app's origin.

param location string
param tags object
param name string
param skuName string

resource site 'Microsoft.Web/staticSites@2023-12-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
  }
  properties: {
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
  }
}

output name string = site.name
output defaultHostname string = site.properties.defaultHostname
