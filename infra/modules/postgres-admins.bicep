// Entra ID administrators of the PostgreSQL server. Each one becomes a login role named after
// the principal: the Function App's system-assigned identity logs in as its app name (the user
// in SH_DATABASE_URL) with an Entra access token as password. The human or CI administrator
// runs the migrations (README). The server takes one administrator change at a time, hence the
// dependsOn between the two.

param serverName string
param adminObjectId string
param adminPrincipalName string
param adminPrincipalType string
param appPrincipalId string
param appPrincipalName string

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: serverName
}

resource admin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: adminObjectId
  properties: {
    principalType: adminPrincipalType
    principalName: adminPrincipalName
    tenantId: tenant().tenantId
  }
}

resource appAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: appPrincipalId
  properties: {
    principalType: 'ServicePrincipal'
    principalName: appPrincipalName
    tenantId: tenant().tenantId
  }
  dependsOn: [
    admin
  ]
}

output appRoleName string = appPrincipalName
