// VNet with three subnets:
//   snet-func      delegated to Microsoft.Web/serverFarms: the Function App's outbound VNet integration
//   snet-postgres  delegated to Microsoft.DBforPostgreSQL/flexibleServers: the server's private address
//   snet-deploy    delegated to Microsoft.ContainerInstance/containerGroups: one-off jobs inside the
//                  VNet, such as `alembic upgrade head` (the server has no public endpoint)

param location string
param tags object
param vnetName string

@description('Address space; each subnet is a /24 (the deploy subnet a /27) carved from it.')
param addressPrefix string

var functionSubnetName = 'snet-func'
var postgresSubnetName = 'snet-postgres'
var deploySubnetName = 'snet-deploy'

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: functionSubnetName
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 1)
          delegations: [
            {
              name: 'functions'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
        }
      }
      {
        name: postgresSubnetName
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 2)
          delegations: [
            {
              name: 'postgres'
              properties: {
                serviceName: 'Microsoft.DBforPostgreSQL/flexibleServers'
              }
            }
          ]
        }
      }
      {
        name: deploySubnetName
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 27, 24)
          delegations: [
            {
              name: 'containerinstances'
              properties: {
                serviceName: 'Microsoft.ContainerInstance/containerGroups'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output functionSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, functionSubnetName)
output postgresSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, postgresSubnetName)
output deploySubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, deploySubnetName)
